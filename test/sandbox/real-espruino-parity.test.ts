// Parity of the sandbox with a real Espruino Linux binary (ESPRUINO_BIN): the same scripts run in
// both and their results are compared. Without a binary these tests report themselves skipped.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RealEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { EspruinoSandbox } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { startServer, startTlsServers, temporaryDir, tlsProbeScript, waitFor, type TestServer } from './helpers.ts';

const binaryPath = process.env.ESPRUINO_BIN ?? '';
const haveBinary = binaryPath !== '';

let server: TestServer | undefined;
let device: RealEspruino | undefined;

afterEach(async () => {
  await device?.stop();
  device = undefined;
  await server?.close();
  server = undefined;
});

describe(`sandbox parity with the real Espruino binary (ESPRUINO_BIN=${binaryPath || 'unset'})`, () => {
  it.skipIf(!haveBinary)('Storage: the same script leaves the same results and a byte-identical espruino.flash in both', async () => {
    const scriptPath = join(import.meta.dirname, 'fixtures', 'storage-script.js');
    const realDir = temporaryDir('espruino');
    const realLines: string[] = [];
    device = new RealEspruino({ binaryPath, workDir: realDir, bundlePath: scriptPath, onConsoleLine: (line) => realLines.push(line) });
    expect(await device.start()).toBe(0);

    const sandboxDir = temporaryDir('sandbox');
    const sandboxLines: string[] = [];
    const sandbox = new EspruinoSandbox({
      code: readFileSync(scriptPath, 'utf8'),
      platform: 'linux',
      flashImagePath: join(sandboxDir, 'espruino.flash'),
      onConsoleLine: (line) => sandboxLines.push(line),
    });
    sandbox.boot();
    await waitFor(() => sandbox.state === 'off', 'the script to quit');

    const results = (lines: string[]): string[] => lines.filter((line) => line.startsWith('op '));
    expect(results(realLines)).toContain('op done');
    expect(results(sandboxLines)).toEqual(results(realLines));
    expect(sandboxLines.filter((line) => line.startsWith('Compacting')).length).toBe(realLines.filter((line) => line.startsWith('Compacting')).length);
    const realImage = readFileSync(join(realDir, 'espruino.flash'));
    const sandboxImage = readFileSync(join(sandboxDir, 'espruino.flash'));
    expect(sandboxImage.length).toBe(realImage.length);
    expect(sandboxImage.equals(realImage)).toBe(true);
  });

  it.skipIf(!haveBinary)('globals: the sandbox offers and hides what the real interpreter does, but for known gaps', async () => {
    const scriptPath = join(import.meta.dirname, 'fixtures', 'globals-probe.js');
    const realLines: string[] = [];
    device = new RealEspruino({ binaryPath, workDir: temporaryDir('espruino'), bundlePath: scriptPath, onConsoleLine: (line) => realLines.push(line) });
    await device.start();
    const sandboxLines: string[] = [];
    const sandbox = new EspruinoSandbox({ code: readFileSync(scriptPath, 'utf8'), platform: 'linux', flashPageCount: 4, onConsoleLine: (line) => sandboxLines.push(line) });
    sandbox.boot();
    await waitFor(() => sandbox.state === 'off', 'the probe to quit');
    // Known and documented in hal-mocks/README.md: V8 objects are objects, not functions;
    // BYTES_PER_ELEMENT cannot be deleted; reading a missing method of a typed array, an
    // ArrayBuffer or a Date gives undefined where Espruino throws or has none.
    const known = /^(E|JSON|Math|Modules|process)=|^Uint8Array\.BYTES_PER_ELEMENT=|^[ub]\.\w+=THROWS$|^d\.toLocaleString=/;
    const entries = (lines: string[], prefix: string): string[] =>
      (lines.find((line) => line.startsWith(prefix)) ?? '').split(' ').slice(1).filter((entry) => !known.test(entry));
    for (const prefix of ['GLOBALS ', 'METHODS ']) {
      const real = entries(realLines, prefix);
      expect(real.length, prefix).toBeGreaterThan(100);
      const sandboxTypes = new Map(entries(sandboxLines, prefix).map((entry) => entry.split('=') as [string, string]));
      const mismatches = real.filter((entry) => {
        const [name, kind] = entry.split('=') as [string, string];
        return sandboxTypes.get(name) !== kind;
      });
      expect(mismatches, prefix).toEqual([]);
    }
  });

  it.skipIf(!haveBinary)('sockets: the same 536-byte chunks and the same bytes on the wire in both', async () => {
    const payload = Buffer.alloc(5000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const received: Buffer[] = [];
    server = await startServer((socket) => {
      socket.on('data', (data: Buffer) => received.push(data));
      socket.end(payload);
    });
    const script = `
      var lengths = [];
      var socket = require("net").connect({ host: "127.0.0.1", port: ${server.port} }, function () {
        socket.write(new Uint8Array([9, 8, 250]));
        socket.write("|\\x09\\x08\\xfa");
      });
      socket.on("data", function (data) { lengths.push(data.length + typeof data); });
      socket.on("close", function () { print("chunks " + lengths.join(",")); quit(); });`;
    const scriptPath = join(temporaryDir('espruino'), 'sockets.js');
    writeFileSync(scriptPath, script);
    const realLines: string[] = [];
    device = new RealEspruino({ binaryPath, workDir: temporaryDir('espruino'), bundlePath: scriptPath, onConsoleLine: (line) => realLines.push(line) });
    await device.start();
    const fromReal = Buffer.concat(received.splice(0));

    const sandboxLines: string[] = [];
    const sandbox = new EspruinoSandbox({ code: script, platform: 'linux', flashPageCount: 4, onConsoleLine: (line) => sandboxLines.push(line) });
    sandbox.boot();
    await waitFor(() => sandbox.state === 'off', 'the script to quit');
    const fromSandbox = Buffer.concat(received);

    const chunks = (lines: string[]): string | undefined => lines.find((line) => line.startsWith('chunks '));
    expect(chunks(realLines)).toBe('chunks ' + [...Array<string>(9).fill('536string'), '176string'].join(','));
    expect(chunks(sandboxLines)).toBe(chunks(realLines));
    expect(fromReal.toString('latin1')).toBe('9,8,250|\x09\x08\xfa');
    expect(fromSandbox.equals(fromReal)).toBe(true);
  });

  it.skipIf(!haveBinary)('tls: the same outcomes in both (no verification, DER ca, RSA only, close as error)', async () => {
    const servers = await startTlsServers();
    try {
      const script = tlsProbeScript(servers);
      const scriptPath = join(temporaryDir('espruino'), 'tls.js');
      writeFileSync(scriptPath, script);
      const realLines: string[] = [];
      device = new RealEspruino({ binaryPath, workDir: temporaryDir('espruino'), bundlePath: scriptPath, onConsoleLine: (line) => realLines.push(line) });
      await device.start();
      const sandboxLines: string[] = [];
      const sandbox = new EspruinoSandbox({ code: script, platform: 'linux', flashPageCount: 4, onConsoleLine: (line) => sandboxLines.push(line) });
      sandbox.boot();
      await waitFor(() => sandbox.state === 'off', 'the probe to quit', 10_000);
      // The real console loses trailing spaces.
      const outcomes = (lines: string[]): string[] => lines.filter((line) => /^(none|right|wrong|pem|ec) |^Uncaught/.test(line)).map((line) => line.trimEnd());
      expect(outcomes(realLines)).toHaveLength(13);
      expect([...outcomes(sandboxLines)].sort()).toEqual([...outcomes(realLines)].sort());
      // Per connection the order matches too (connections interleave differently).
      for (const tag of ['none', 'right', 'wrong', 'ec']) {
        const ofTag = (lines: string[]): string[] => outcomes(lines).filter((line) => line.startsWith(`${tag} `));
        expect(ofTag(sandboxLines), tag).toEqual(ofTag(realLines));
      }
    } finally {
      servers.close();
    }
  });
});
