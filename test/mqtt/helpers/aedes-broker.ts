// An embedded Aedes broker on a free loopback port, for tests that need to shape the broker
// (refuse credentials, watch publishes) or must not share Mosquitto's state.
import { Aedes, type AedesOptions } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';

export interface EmbeddedBroker {
  broker: Aedes;
  port: number;
  close(): Promise<void>;
}

export async function startAedes(options: AedesOptions = {}): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker(options);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    broker,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
