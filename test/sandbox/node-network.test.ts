// NodeNetwork keeps the HAL Network contract over real TCP: exact bytes out, byte strings in
// chunks of at most 536 bytes, one onClose per connection, failures as onClose(true).
import { afterEach, describe, expect, it } from 'vitest';
import type { SocketHandlers } from '../../firmware/hal/socket.ts';
import { NodeNetwork } from '../../hal-mocks/node-network.ts';
import { closedPort, startServer, waitFor, type TestServer } from './helpers.ts';

let server: TestServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

function recorder(): { handlers: SocketHandlers; events: string[]; chunks: string[] } {
  const events: string[] = [];
  const chunks: string[] = [];
  return {
    events,
    chunks,
    handlers: {
      onConnect: () => events.push('connect'),
      onData: (bytes) => chunks.push(bytes),
      onClose: (hadError) => events.push(`close ${hadError}`),
    },
  };
}

describe('NodeNetwork', () => {
  it('sends a copied buffer slice and receives byte strings in chunks of at most 536 bytes', async () => {
    const payload = Buffer.alloc(3000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
    server = await startServer((socket) => socket.on('data', () => socket.end(payload)));
    const { handlers, events, chunks } = recorder();
    const buffer = new Uint8Array([0, 1, 2, 250, 251, 252]);
    const socket = new NodeNetwork().connect('127.0.0.1', server.port, false, handlers);
    expect(socket.write(buffer, 2, 3)).toBe(true);
    buffer.fill(0); // the bytes were copied at write()
    await waitFor(() => events.includes('close false'), 'close');
    expect(server.received()).toEqual(Buffer.from([2, 250, 251]));
    expect(Math.max(...chunks.map((chunk) => chunk.length))).toBeLessThanOrEqual(536);
    expect(Buffer.from(chunks.join(''), 'latin1')).toEqual(payload);
    expect(events).toEqual(['connect', 'close false']);
    expect(socket.write(buffer, 0, 1)).toBe(false);
  });

  it('reports a refused connection as onClose(true), once', async () => {
    const { handlers, events } = recorder();
    new NodeNetwork().connect('127.0.0.1', await closedPort(), false, handlers);
    await waitFor(() => events.length > 0, 'close');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(events).toEqual(['close true']);
  });

  it('close() ends the connection and calls onClose(false)', async () => {
    server = await startServer();
    const { handlers, events } = recorder();
    const socket = new NodeNetwork().connect('127.0.0.1', server.port, false, handlers);
    await waitFor(() => events.includes('connect'), 'connect');
    socket.close();
    await waitFor(() => events.length === 2, 'close');
    expect(events).toEqual(['connect', 'close false']);
  });
});
