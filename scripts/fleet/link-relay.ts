// A TCP relay between one device in a real Espruino binary and the broker: the real interpreter's
// sockets are the host's, so the fleet counts its bytes and takes it offline here instead of in
// the sandbox. Offline: open connections are cut (no goodbye) and new ones are closed at once.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class LinkRelay {
  bytesSent = 0;
  bytesReceived = 0;
  private online = true;
  private readonly pairs = new Set<[Socket, Socket]>();
  private server: Server | undefined;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async listen(host = '127.0.0.1'): Promise<number> {
    const server = createServer((device) => this.accept(device));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    return this.port;
  }

  get networkOnline(): boolean {
    return this.online;
  }

  setNetworkOnline(online: boolean): void {
    this.online = online;
    if (!online) for (const [device, broker] of this.pairs) {
      device.destroy();
      broker.destroy();
    }
  }

  private accept(device: Socket): void {
    if (!this.online) {
      device.destroy();
      return;
    }
    const broker = connect(this.targetPort, this.targetHost);
    const pair: [Socket, Socket] = [device, broker];
    this.pairs.add(pair);
    device.on('data', (chunk: Buffer) => {
      // Bytes the device sends: its uplink, what a cellular plan bills as sent.
      this.bytesSent += chunk.length;
      broker.write(chunk);
    });
    broker.on('data', (chunk: Buffer) => {
      this.bytesReceived += chunk.length;
      device.write(chunk);
    });
    const close = (): void => {
      this.pairs.delete(pair);
      device.destroy();
      broker.destroy();
    };
    device.on('close', close);
    broker.on('close', close);
    device.on('error', close);
    broker.on('error', close);
  }

  async close(): Promise<void> {
    this.setNetworkOnline(false);
    const server = this.server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
