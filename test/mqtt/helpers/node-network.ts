// A minimal HAL Network over Node's real TCP for the MQTT client tests (hal-mocks/node-network.ts
// was not there yet when these tests were written). Data arrives as latin1 byte strings, as on the
// device; `destroyAll` kills every socket without a goodbye, the way a dying link does.
import { Socket as NodeSocket, connect } from 'node:net';
import type { Network, Socket, SocketHandlers } from '../../../firmware/hal/socket.ts';

class NodeTcpSocket implements Socket {
  readonly socket: NodeSocket;
  private closed = false;

  constructor(host: string, port: number, handlers: SocketHandlers) {
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => handlers.onConnect());
    this.socket.on('data', (chunk: Buffer) => handlers.onData(chunk.toString('latin1')));
    this.socket.on('error', () => undefined);
    this.socket.on('close', (hadError: boolean) => {
      if (this.closed) return;
      this.closed = true;
      handlers.onClose(hadError);
    });
  }

  write(data: Uint8Array, offset: number, length: number): boolean {
    if (this.closed || this.socket.destroyed) return false;
    // Copy: the caller reuses its buffer as soon as write returns.
    this.socket.write(Buffer.from(data.subarray(offset, offset + length)));
    return true;
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
  }
}

export class NodeNetwork implements Network {
  readonly sockets: NodeTcpSocket[] = [];
  /** Bytes written by the client, all connections together. */
  bytesWritten = 0;

  connect(host: string, port: number, secure: boolean, handlers: SocketHandlers): Socket {
    if (secure) throw new Error('NodeNetwork in test/mqtt speaks plain TCP only');
    const socket = new NodeTcpSocket(host, port, handlers);
    const write = socket.write.bind(socket);
    socket.write = (data, offset, length) => {
      this.bytesWritten += length;
      return write(data, offset, length);
    };
    this.sockets.push(socket);
    return socket;
  }

  /** Kills every open socket with a TCP reset: no DISCONNECT, so the broker fires the Last Will. */
  destroyAll(): void {
    for (const socket of this.sockets) if (!socket.socket.destroyed) socket.socket.resetAndDestroy();
  }
}
