// Shared helpers of the sandbox tests: a local TCP server, firmware bundles built once per file,
// and waiting on console output.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
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

export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A self-signed certificate for 127.0.0.1 (made with openssl), PEM, and its DER body as a byte string. */
export function selfSignedCertificate(kind: 'rsa' | 'ec' = 'rsa'): { key: string; cert: string; der: string } {
  const dir = temporaryDir('tls');
  const keyOptions = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  execFileSync('openssl', ['req', '-x509', ...keyOptions, '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const body = cert.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert, der: Buffer.from(body, 'base64').toString('latin1') };
}

/** TLS servers that send "secret" and close: one with an RSA certificate, one with an EC one. */
export async function startTlsServers(): Promise<{ rsaPort: number; ecPort: number; rsa: ReturnType<typeof selfSignedCertificate>; stranger: ReturnType<typeof selfSignedCertificate>; close(): void }> {
  const rsa = selfSignedCertificate('rsa');
  const ec = selfSignedCertificate('ec');
  const stranger = selfSignedCertificate('rsa');
  const servers = [rsa, ec].map((identity) => {
    const server = createTlsServer({ key: identity.key, cert: identity.cert }, (socket) => socket.end('secret'));
    server.on('tlsClientError', () => undefined);
    return server;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))));
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  return { rsaPort: ports[0]!, ecPort: ports[1]!, rsa, stranger, close: () => servers.forEach((server) => server.close()) };
}

/** An Espruino script exercising tls against startTlsServers(); it quits after five outcomes. */
export function tlsProbeScript(servers: Awaited<ReturnType<typeof startTlsServers>>): string {
  return `
    var done = 0;
    function finish() { if (++done === 5) quit(); }
    function open(tag, port, ca) {
      var options = { host: "127.0.0.1", port: port };
      if (ca !== undefined) options.ca = ca;
      var got = "";
      try {
        var socket = require("tls").connect(options, function () { print(tag + " connect"); });
      } catch (e) {
        print(tag + " threw " + e.message);
        finish();
        return;
      }
      socket.on("data", function (data) { got += data; });
      socket.on("error", function (e) { print(tag + " error " + JSON.stringify(e)); });
      socket.on("close", function (hadError) { print(tag + " close " + hadError + " " + got); finish(); });
    }
    open("none", ${servers.rsaPort});
    open("right", ${servers.rsaPort}, atob(${JSON.stringify(Buffer.from(servers.rsa.der, 'latin1').toString('base64'))}));
    open("wrong", ${servers.rsaPort}, atob(${JSON.stringify(Buffer.from(servers.stranger.der, 'latin1').toString('base64'))}));
    open("pem", ${servers.rsaPort}, ${JSON.stringify(servers.rsa.cert)});
    open("ec", ${servers.ecPort});`;
}
