// The HAL Network over real TCP (node:net, node:tls), for tests that run core code directly in
// Node rather than inside the Espruino sandbox. It keeps the device's contract: byte strings in
// chunks of at most 536 bytes, bytes copied at write(), one onClose(hadError) per connection, and
// a failed connect reported through onClose(true), never thrown.
// Fault model: whatever the host network does; nothing is injected here (use the broker or a
// test server to drop connections).
import { connect as netConnect, type Socket as NodeSocket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Network, Socket, SocketHandlers } from '../firmware/hal/socket.ts';

export interface NodeNetworkOptions {
  /** Largest chunk handed to onData; default 536, as an ESP32 delivers. */
  chunkBytesMax?: number;
  /** PEM of the CA for TLS connections; without it the server is not verified (as on the device). */
  caCert?: string;
}

class NodeSocketAdapter implements Socket {
  private closed = false;
  private hadError = false;

  constructor(
    private readonly socket: NodeSocket,
    private readonly handlers: SocketHandlers,
    chunkBytesMax: number,
    secure: boolean,
  ) {
    socket.setNoDelay(true);
    socket.on(secure ? 'secureConnect' : 'connect', () => {
      if (!this.closed) handlers.onConnect();
    });
    socket.on('data', (data: Buffer) => {
      for (let offset = 0; offset < data.length && !this.closed; offset += chunkBytesMax) {
        handlers.onData(data.subarray(offset, Math.min(offset + chunkBytesMax, data.length)).toString('latin1'));
      }
    });
    socket.on('error', () => {
      this.hadError = true;
    });
    socket.on('close', (hadError: boolean) => this.finish(hadError));
  }

  write(data: Uint8Array, offset: number, length: number): boolean {
    if (this.closed || this.socket.destroyed) return false;
    // Copied now: the caller may reuse its buffer as soon as write() returns.
    this.socket.write(Buffer.from(data.subarray(offset, offset + length)));
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.socket.end(() => this.socket.destroy());
  }

  private finish(hadError: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose(hadError || this.hadError);
  }
}

export class NodeNetwork implements Network {
  private readonly chunkBytesMax: number;
  private readonly caCert: string | undefined;

  constructor(options: NodeNetworkOptions = {}) {
    this.chunkBytesMax = options.chunkBytesMax ?? 536;
    this.caCert = options.caCert;
  }

  connect(host: string, port: number, secure: boolean, handlers: SocketHandlers): Socket {
    const socket = secure
      ? tlsConnect({ host, port, rejectUnauthorized: this.caCert !== undefined, ...(this.caCert !== undefined ? { ca: this.caCert } : {}) })
      : netConnect({ host, port });
    return new NodeSocketAdapter(socket, handlers, this.chunkBytesMax, secure);
  }
}
