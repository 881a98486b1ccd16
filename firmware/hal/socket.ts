// The network boundary. Data crosses it as byte strings (one char per byte, 0..255), as Espruino's
// sockets deliver it (in chunks of at most 536 bytes on a board).

export interface SocketHandlers {
  onConnect(): void;
  /** A chunk of received bytes as a byte string. */
  onData(bytes: string): void;
  /** The connection is gone (closed by either side, or failed). Called once. */
  onClose(hadError: boolean): void;
}

export interface Socket {
  /** Queues bytes (a byte string) for sending. Returns false when the socket is already closed. */
  write(bytes: string): boolean;
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
