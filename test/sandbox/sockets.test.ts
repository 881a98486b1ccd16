// Sandbox sockets are real TCP with Espruino's behaviour: 536-byte chunks as byte strings, typed
// arrays written as text, failures as 'error' then 'close'; and the firmware's HAL Network
// (firmware/hal/espruino/network.ts), built into a bundle, moves exact bytes over them.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EspruinoSandbox } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { socketChunkBytesMax } from '../../hal-mocks/espruino-sandbox/sockets.ts';
import { buildBundle, closedPort, startServer, startTlsServers, tlsProbeScript, waitFor, type TestServer } from './helpers.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
let server: TestServer | undefined;
let sandbox: EspruinoSandbox | undefined;

afterEach(async () => {
  sandbox?.stop();
  sandbox = undefined;
  await server?.close();
  server = undefined;
});

function boot(code: string): string[] {
  const lines: string[] = [];
  sandbox = new EspruinoSandbox({ code, platform: 'linux', flashPageCount: 4, onConsoleLine: (line) => lines.push(line) });
  sandbox.boot();
  return lines;
}

describe('sandbox sockets over real TCP', () => {
  it('delivers received data as byte strings in chunks of at most 536 bytes', async () => {
    const payload = Buffer.alloc(5000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    server = await startServer((socket) => socket.end(payload));
    boot(`
      var chunks = [], closed = false;
      var socket = require("net").connect({ host: "127.0.0.1", port: ${server.port} });
      socket.on("data", function (data) { chunks.push(data); });
      socket.on("close", function () { closed = true; });`);
    await waitFor(() => sandbox!.evaluate('closed') === true, 'the socket to close');
    const lengths = sandbox!.evaluate('chunks.map(function (c) { return c.length; })') as number[];
    expect(socketChunkBytesMax).toBe(536);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(536);
    expect(lengths.reduce((sum, length) => sum + length, 0)).toBe(5000);
    expect(lengths.length).toBeGreaterThanOrEqual(Math.ceil(5000 / 536));
    expect(sandbox!.evaluate('typeof chunks[0]')).toBe('string');
    expect(Buffer.from(sandbox!.evaluate('chunks.join("")') as string, 'latin1')).toEqual(payload);
  });

  it('sends a Uint8Array as its decimal text and a byte string as bytes, as Espruino does', async () => {
    server = await startServer();
    boot(`
      var socket = require("net").connect({ host: "127.0.0.1", port: ${server.port} }, function () {
        socket.write(new Uint8Array([9, 8, 250]));
        socket.write("|");
        socket.write("\\x09\\x08\\xfa");
        socket.end();
      });`);
    await waitFor(() => server!.received().length >= 11, 'the bytes');
    expect(server.received()).toEqual(Buffer.concat([Buffer.from('9,8,250|'), Buffer.from([9, 8, 250])]));
  });

  it('reports a refused connection as an error event and then close, never a throw', async () => {
    const port = await closedPort();
    const lines = boot(`
      var socket = require("net").connect({ host: "127.0.0.1", port: ${port} }, function () { print("connected?!"); });
      socket.on("error", function (e) { print("error " + (typeof e.message)); });
      socket.on("close", function (hadError) { print("close " + hadError); });`);
    await waitFor(() => lines.some((line) => line.startsWith('close')), 'close');
    expect(lines).toEqual(['error string', 'close true']);
    expect(sandbox!.socketCount).toBe(0);
  });

  it('takes the network down and back: sockets fail as on a board, bytes are counted', async () => {
    server = await startServer((socket) => socket.write('12345'));
    const lines = boot(`
      function open(tag) {
        var socket = require("net").connect({ host: "127.0.0.1", port: ${server.port} }, function () { print(tag + " connect"); socket.write("abc"); });
        socket.on("error", function (e) { print(tag + " error " + e.message); });
        socket.on("close", function (hadError) { print(tag + " close " + hadError); });
      }
      open("a");`);
    await waitFor(() => lines.includes('a connect') && sandbox!.bytesReceived === 5, 'the first connection');
    await waitFor(() => server!.received().length === 3, 'the bytes sent');
    expect(sandbox!.bytesSent).toBe(3);
    sandbox!.setNetworkOnline(false);
    expect(lines.slice(-2)).toEqual(['a error network down', 'a close true']);
    sandbox!.evaluate('open("b")');
    await waitFor(() => lines.includes('b close true'), 'the offline attempt');
    expect(lines.slice(-2)).toEqual(['b error network down', 'b close true']);
    expect(server.connections).toHaveLength(1);
    sandbox!.setNetworkOnline(true);
    sandbox!.evaluate('open("c")');
    await waitFor(() => lines.includes('c connect'), 'the connection after the network is back');
    expect(sandbox!.networkOnline).toBe(true);
  });

  it('tls as Espruino does it: never verified, DER ca only, RSA only, peer close as an error', async () => {
    const servers = await startTlsServers();
    try {
      const lines = boot(tlsProbeScript(servers));
      await waitFor(() => sandbox!.state === 'off', 'the probe to quit', 10_000);
      const closeNotify = 'error {"code":-30848,"message":"unknown error"}';
      expect(lines.filter((line) => !line.startsWith('ec ') && !line.startsWith('Uncaught')).sort()).toEqual(
        [
          'none connect', `none ${closeNotify}`, 'none close true secret',
          'right connect', `right ${closeNotify}`, 'right close true secret',
          'wrong connect', `wrong ${closeNotify}`, 'wrong close true secret',
          "pem threw HTTPS init failed! mbedtls_x509_crt_parse of 'ca': Invalid format",
        ].sort(),
      );
      expect(lines.filter((line) => line.startsWith('ec ') || line.startsWith('Uncaught'))).toEqual([
        'ec connect', 'ec close false ', 'Uncaught InternalError: mbedtls_ssl_handshake returned -0x7780',
      ]);
    } finally {
      servers.close();
    }
  });

  it('stop() drops open sockets', async () => {
    server = await startServer();
    boot(`require("net").connect({ host: "127.0.0.1", port: ${server.port} });`);
    await waitFor(() => server!.connections.length === 1, 'the connection');
    expect(sandbox!.socketCount).toBe(1);
    const closed = new Promise<void>((resolve) => server!.connections[0]!.on('close', () => resolve()));
    sandbox!.stop();
    await closed;
    expect(sandbox!.socketCount).toBe(0);
  });
});

describe('the firmware HAL Network in a bundle', () => {
  const probe = `
    import { EspruinoNetwork } from '${join(repoRoot, 'firmware/hal/espruino/network.ts')}';
    const bytes = new Uint8Array(300);
    for (let i = 0; i < 300; i++) bytes[i] = i & 255;
    function connect(port: number, secure: boolean, caCert: string | undefined): void {
      const network = new EspruinoNetwork(caCert);
      let received = '';
      const socket = network.connect('127.0.0.1', port, secure, {
        onConnect: function () {
          console.log('connect');
          // A slice of a preallocated buffer: bytes 10..265.
          console.log('write ' + socket.write(bytes, 10, 256));
        },
        onData: function (data: string) { received += data; },
        onClose: function (hadError: boolean) {
          console.log('close ' + hadError + ' received ' + received.length + (received.length > 0 && received.length < 10 ? ' ' + received : '') + ' write-after-close ' + socket.write(bytes, 0, 1));
        },
      });
    }
    // A quoted key: the build mangles property names it can see are internal.
    (globalThis as unknown as Record<string, unknown>)['connectProbe'] = connect;`;
  let bundlePath = '';

  beforeAll(async () => {
    bundlePath = await buildBundle(probe);
  });

  it('sends exact bytes from a buffer slice, receives, and reports close once', async () => {
    server = await startServer((socket) => {
      socket.on('data', () => {
        if (server!.received().length >= 256) socket.end(Buffer.alloc(1000, 1));
      });
    });
    const lines: string[] = [];
    sandbox = new EspruinoSandbox({ bundlePath, flashPageCount: 4, onConsoleLine: (line) => lines.push(line) });
    sandbox.boot();
    sandbox.evaluate(`connectProbe(${server.port}, false)`);
    await waitFor(() => lines.some((line) => line.startsWith('close')), 'close');
    const expected = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) expected[i] = (i + 10) & 0xff;
    expect(server.received()).toEqual(expected);
    expect(lines).toEqual(['connect', 'write true', 'close false received 1000 write-after-close false']);
  });

  it('connects over TLS with a PEM CA from the device config (converted to DER for Espruino)', async () => {
    const servers = await startTlsServers();
    try {
      const lines: string[] = [];
      sandbox = new EspruinoSandbox({ bundlePath, flashPageCount: 4, onConsoleLine: (line) => lines.push(line) });
      sandbox.boot();
      sandbox.evaluate(`connectProbe(${servers.rsaPort}, true, ${JSON.stringify(servers.rsa.cert)})`);
      await waitFor(() => lines.some((line) => line.startsWith('close')), 'close');
      // The server's orderly TLS close reaches the HAL as an error, as on Espruino.
      expect(lines).toEqual(['connect', 'write true', 'close true received 6 secret write-after-close false']);
      expect(sandbox.uncaughtErrors).toEqual([]);
    } finally {
      servers.close();
    }
  });

  it('turns a refused connection into onClose(true)', async () => {
    const port = await closedPort();
    const lines: string[] = [];
    sandbox = new EspruinoSandbox({ bundlePath, flashPageCount: 4, onConsoleLine: (line) => lines.push(line) });
    sandbox.boot();
    sandbox.evaluate(`connectProbe(${port}, false)`);
    await waitFor(() => lines.length > 0, 'close');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lines).toEqual(['close true received 0 write-after-close false']);
  });
});
