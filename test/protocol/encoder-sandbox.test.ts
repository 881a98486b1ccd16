// The device-side encoder running inside the real firmware bundle [WIRE-5][WIRE-3]: the fixture
// entry is built by the firmware build (esbuild + Espruino gate), run in the Espruino sandbox
// (and in a real Espruino binary when ESPRUINO_BIN names one), and what it prints is decoded here
// by the cloud's side of the codec.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { encodeRecord } from '../../firmware/protocol/record.ts';
import { allTemplates, createDefaultRegistry, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { decodeFrame } from '../../firmware/protocol/wire-objects.ts';
import { EspruinoSandbox } from '../../hal-mocks/espruino-sandbox/index.ts';
import { RealEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../../scripts/build/build-firmware.ts';

const entry = join(import.meta.dirname, 'fixtures', 'encoder-entry.ts');

/** The records the entry encodes: the same deterministic walk, written out again here. */
function expectedRecords(): { ts: number; temp: number; hum: number; batt: number }[] {
  const records = [];
  let temp = 215;
  for (let i = 0; i < 50; i++) {
    temp += i % 3 === 0 ? 1 : i % 3 === 1 ? -2 : 1;
    records.push({ ts: 1764201600000 + i * 60000 + (i % 17 === 5 ? 2000 : 0), temp: temp / 10, hum: 45 + (i % 10 === 3 ? 1 : 0), batt: 3950 - Math.floor(i / 20) });
  }
  return records;
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function line(lines: string[], tag: string): string {
  const found = lines.find((text) => text.startsWith(tag + ' '));
  if (found === undefined) throw new Error(`the device printed no ${tag} line; it printed:\n${lines.join('\n')}`);
  return found.slice(tag.length + 1);
}

/** Checks everything the entry printed against the cloud side. */
function checkDeviceOutput(lines: string[], native: boolean): Record<string, number> {
  const frame = fromHex(line(lines, 'FRAME'));
  const decoded = decodeFrame(frame, createDefaultRegistry());
  if (!decoded.ok) throw new Error(`cloud could not decode the device's frame: ${decoded.message}`);
  expect(decoded.kind).toBe('batch');
  expect(decoded.template?.name).toBe('telemetry');
  expect(decoded.firstSeq).toBe(1000);
  expect(decoded.records).toEqual(expectedRecords());
  expect(frame.length / 50).toBeLessThanOrEqual(3);

  const [jsCrc, nativeCrc] = line(lines, 'CRC').split(' ').map(Number);
  expect(jsCrc).toBe(crc32(frame, 0, frame.length - 4));
  if (native) expect(nativeCrc).toBe(jsCrc);

  const hashes = Object.fromEntries(line(lines, 'HASHES').split(',').map((pair) => pair.split('=')));
  for (const template of allTemplates()) expect(Number(hashes[template.name])).toBe(template.hash);

  const last = expectedRecords()[49];
  const record = new Uint8Array(32);
  const length = encodeRecord(telemetryTemplate, [last.ts, last.temp, last.hum, last.batt], record, 0, 32);
  expect(line(lines, 'RECORD')).toBe(Buffer.from(record.subarray(0, length)).toString('hex'));

  const loose = decodeFrame(fromHex(line(lines, 'LOOSE')), createDefaultRegistry());
  if (!loose.ok) throw new Error(`cloud could not decode the device's untemplated frame: ${loose.message}`);
  expect(loose.firstSeq).toBe(7);
  expect(loose.records).toEqual([
    { kind: 'boot', ok: true, reason: null, n: -3, v: 1.5, big: 123456, list: [1, 'x', 2.25] },
    { kind: 'wifi', ok: false, reason: 'auth', n: 300, v: 0.1, big: -70000, list: [] },
  ]);
  expect(lines).toContain('DONE');

  const cost = Object.fromEntries(line(lines, 'COST').split(' ').map((pair) => pair.split('=')).map(([key, value]) => [key, Number(value)]));
  expect(cost.code).toBe(0);
  if (native) expect(cost.jsVarsAfter).toBe(cost.jsVarsBefore);
  return cost;
}

describe('encoder inside the firmware bundle [WIRE-5]', () => {
  let workDir = '';
  let bundlePath = '';

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'tandem-wire-'));
    bundlePath = join(workDir, 'encoder.js');
    const result = await buildFirmware({ entry, outFile: bundlePath, quiet: true });
    if (!result.ok) throw new Error(`the encoder fixture did not build:\n${result.failures.join('\n')}`);
  });

  afterAll(() => {
    if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
  });

  it('passes the Espruino gate and stays small [WIRE-5]', () => {
    expect(readFileSync(bundlePath, 'utf8').length).toBeLessThan(16 * 1024);
  });

  it('encodes in the Espruino sandbox with native E.CRC32, decoded by the cloud [WIRE-3][WIRE-5]', () => {
    const lines: string[] = [];
    const sandbox = new EspruinoSandbox({ bundlePath, onConsoleLine: (text) => lines.push(text) });
    sandbox.boot();
    sandbox.stop();
    expect(sandbox.uncaughtErrors).toEqual([]);
    checkDeviceOutput(lines, true);
  });

  const binary = process.env.ESPRUINO_BIN ?? '';
  it.runIf(binary !== '' && existsSync(binary))('encodes in a real Espruino binary, byte for byte as in Node [WIRE-5]', async () => {
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir, bundlePath, onConsoleLine: (text) => lines.push(text) });
    const exited = device.start();
    const deadline = Date.now() + 15_000;
    while (!lines.includes('DONE') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await device.stop();
    await exited;
    const cost = checkDeviceOutput(lines, true);
    // The real interpreter's figures, for the report: encode time per event and retained JsVars.
    console.log(`real Espruino: ${cost.events} events encoded in ${cost.ms} ms (${(cost.ms / cost.events).toFixed(2)} ms/event), JsVars ${cost.jsVarsBefore} -> ${cost.jsVarsAfter}`);
  });
});
