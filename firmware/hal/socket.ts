// The network boundary. Received data arrives as byte strings (one char per byte, 0..255), as
// Espruino's sockets deliver it (in chunks of at most 536 bytes on a board); data to send is given
// as a slice of a preallocated Uint8Array, which the HAL turns into what its socket takes
// (`E.toString` on a board, a Buffer in Node).

export interface SocketHandlers {
  onConnect(): void;
  /** A chunk of received bytes as a byte string. */
  onData(bytes: string): void;
  /** The connection is gone (closed by either side, or failed). Called once. */
  onClose(hadError: boolean): void;
}

export interface Socket {
  /**
   * Queues `length` bytes of `data` from `offset` for sending; the bytes are copied before this
   * returns, so the caller may reuse its buffer. Returns false when the socket is already closed.
   */
  write(data: Uint8Array, offset: number, length: number): boolean;
  /** Closes the connection; onClose follows. */
  close(): void;
}

export interface Network {
  /**
   * Opens a TCP (or TLS, when `secure`) connection. Failure to connect is reported through
   * handlers.onClose(true), never thrown, whatever the platform does underneath.
   */
  connect(host: string, port: number, secure: boolean, handlers: SocketHandlers): Socket;
}
