// The relay that stands between a real Espruino interpreter and the broker: it passes bytes both
// ways and counts them per direction, and offline it cuts open connections and refuses new ones.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkRelay } from '../../scripts/fleet/link-relay.ts';

let echo: Server | undefined;
let relay: LinkRelay | undefined;

afterEach(async () => {
  await relay?.close();
  relay = undefined;
  echo?.close();
  echo = undefined;
});

async function startEcho(): Promise<number> {
  const server = createServer((socket) => socket.on('data', (chunk) => socket.write(Buffer.concat([chunk, chunk]))));
  echo = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as { port: number }).port;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

function nextData(socket: Socket): Promise<Buffer> {
  return new Promise((resolve) => socket.once('data', resolve));
}

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

describe('LinkRelay', () => {
  it('passes bytes both ways and counts each direction', async () => {
    relay = new LinkRelay('127.0.0.1', await startEcho());
    const device = await open(await relay.listen());
    const answer = nextData(device);
    device.write('hello');
    expect((await answer).toString()).toBe('hellohello');
    expect(relay.bytesSent).toBe(5);
    expect(relay.bytesReceived).toBe(10);
    device.destroy();
  });

  it('offline: cuts the open connection and refuses new ones until back online', async () => {
    relay = new LinkRelay('127.0.0.1', await startEcho());
    const port = await relay.listen();
    const device = await open(port);
    const cut = closed(device);
    relay.setNetworkOnline(false);
    expect(relay.networkOnline).toBe(false);
    await cut;
    const refused = await open(port);
    await closed(refused);
    const before = relay.bytesSent;
    relay.setNetworkOnline(true);
    const again = await open(port);
    const answer = nextData(again);
    again.write('up');
    expect((await answer).toString()).toBe('upup');
    expect(relay.bytesSent).toBe(before + 2);
    again.destroy();
  });
});
