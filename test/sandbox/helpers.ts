// Shared helpers of the sandbox tests: a local TCP server, firmware bundles built once per file,
// and waiting on console output.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmwareBundle } from '../../scripts/commands/emulate.ts';

export function temporaryDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tandem-${prefix}-`));
}

export interface TestServer {
  server: Server;
  port: number;
  connections: Socket[];
  /** Every byte received, over all connections. */
  received(): Buffer;
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 and a free port; `onConnection` may write to each new socket. */
export async function startServer(onConnection: (socket: Socket) => void = () => undefined): Promise<TestServer> {
  const connections: Socket[] = [];
  const chunks: Buffer[] = [];
  const server = createServer((socket) => {
    connections.push(socket);
    socket.on('data', (data: Buffer) => chunks.push(data));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    connections,
    received: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = await startServer();
  const port = server.port;
  await server.close();
  return port;
}

/** Builds firmware/main.ts (or an entry written from `source`) into a temporary bundle. */
export async function buildBundle(source?: string): Promise<string> {
  const dir = temporaryDir('bundle');
  let entry: string | undefined;
  if (source !== undefined) {
    entry = join(dir, 'entry.ts');
    writeFileSync(entry, source);
  }
  return buildFirmwareBundle(join(dir, 'firmware.js'), true, entry);
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
