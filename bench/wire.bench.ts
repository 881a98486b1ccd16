// `npm run bench -- wire`: bytes per event of the wire codec against JSON, CBOR (cbor-x, plain and
// with its record extension) and MessagePack of the same records, single events and batches of 10,
// 50 and 200, on the reference telemetry stream and a 10-field power-meter stream; also
// bytes on the wire inside MQTT PUBLISH packets, the order-0 entropy of the per-field deltas, and
// encode/decode speed in Node. Every tandem batch is decoded back and compared before it counts.
import { decode as msgpackDecode, encode as msgpackEncode } from '@msgpack/msgpack';
import { Encoder as CborEncoder } from 'cbor-x';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { RealEspruino } from '../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware, repoRoot } from '../scripts/build/build-firmware.ts';
import { wireFrameBytesMax } from '../firmware/protocol/limits.ts';
import { encodeRecord } from '../firmware/protocol/record.ts';
import { quantize, type Template, type WireValue } from '../firmware/protocol/template.ts';
import { createDefaultRegistry, powerMeterTemplate, telemetryTemplate } from '../firmware/protocol/templates/index.ts';
import { uplinkTopic } from '../firmware/protocol/topics.ts';
import { decodeFrame, encodeRecordsToFrames, encodeUntemplatedFrames } from '../firmware/protocol/wire-objects.ts';
import { powerMeterStream, referenceTelemetryStream } from '../test/protocol/streams.ts';
import { printTable } from './results.ts';

export const summary = 'Wire codec: bytes per event vs JSON, CBOR, MessagePack; with MQTT framing; speed';

const batchSizes = [1, 10, 50, 200] as const;
const batchKey = (size: number) => (size === 1 ? 'single' : `batch${size}`);
const formats = ['tandem', 'untemplated', 'json', 'cbor', 'cborRecords', 'msgpack'] as const;
type Format = (typeof formats)[number];
/** A typical device id: the topic is `t/<id>/u`. */
const deviceId = 'dev-0001';

/** Bytes of one MQTT 3.1.1 QoS 1 PUBLISH carrying `payload` bytes to the uplink topic. */
function mqttPublishBytes(payload: number): number {
  const remaining = 2 + uplinkTopic(deviceId).length + 2 + payload;
  let lengthBytes = 1;
  for (let rest = remaining; rest >= 128; rest = Math.floor(rest / 128)) lengthBytes++;
  return 1 + lengthBytes + remaining;
}

/** Encoded payloads (one per MQTT publish) of a batch in each format. */
function encodeBatch(template: Template, records: Record<string, unknown>[]): Record<Format, number[]> {
  const single = records.length === 1;
  const value = single ? records[0] : records;
  const encoded = encodeRecordsToFrames(template, records);
  if (!encoded.ok) throw new Error(`tandem refused the benchmark stream: ${encoded.error.message}`);
  // Prove the bytes carry the records before counting them.
  const decoded = encoded.frames.flatMap((frame) => {
    const result = decodeFrame(frame, registry);
    if (!result.ok) throw new Error(`tandem frame did not decode: ${result.message}`);
    return result.records;
  });
  if (!isDeepStrictEqual(decoded, records)) throw new Error('tandem frames decoded to other records');
  if (!isDeepStrictEqual(msgpackDecode(msgpackEncode(value)), value)) throw new Error('msgpack round trip differs');
  // The same records through the untemplated fallback [WIRE-50], checked the same way.
  const loose = encodeUntemplatedFrames(records);
  if (!loose.ok) throw new Error(`untemplated refused the benchmark stream: ${loose.error.message}`);
  const looseDecoded = loose.frames.flatMap((frame) => {
    const result = decodeFrame(frame, registry);
    if (!result.ok) throw new Error(`untemplated frame did not decode: ${result.message}`);
    return result.records;
  });
  if (!isDeepStrictEqual(looseDecoded, records)) throw new Error('untemplated frames decoded to other records');
  return {
    tandem: encoded.frames.map((frame) => frame.length),
    untemplated: loose.frames.map((frame) => frame.length),
    json: [Buffer.byteLength(JSON.stringify(value))],
    // A fresh encoder per batch: no structures shared between messages, as on the wire.
    cbor: [new CborEncoder({ useRecords: false }).encode(value).length],
    cborRecords: [new CborEncoder({ useRecords: true }).encode(value).length],
    msgpack: [msgpackEncode(value).length],
  };
}

const registry = createDefaultRegistry();

interface StreamFigures {
  bytesPerEvent: Record<string, Record<Format, number>>;
  mqttBytesPerEvent: Record<string, Record<Format, number>>;
  cborOverTandem: Record<string, number>;
}

function measureStream(template: Template, records: Record<string, unknown>[]): StreamFigures {
  const figures: StreamFigures = { bytesPerEvent: {}, mqttBytesPerEvent: {}, cborOverTandem: {} };
  for (const size of batchSizes) {
    const totals = Object.fromEntries(formats.map((format) => [format, 0])) as Record<Format, number>;
    const wire = Object.fromEntries(formats.map((format) => [format, 0])) as Record<Format, number>;
    let events = 0;
    for (let start = 0; start + size <= records.length; start += size) {
      const payloads = encodeBatch(template, records.slice(start, start + size));
      for (const format of formats) {
        for (const bytes of payloads[format]) {
          totals[format] += bytes;
          wire[format] += mqttPublishBytes(bytes);
        }
      }
      events += size;
    }
    const round = (value: number) => Math.round(value * 1000) / 1000;
    figures.bytesPerEvent[batchKey(size)] = Object.fromEntries(formats.map((f) => [f, round(totals[f] / events)])) as Record<Format, number>;
    figures.mqttBytesPerEvent[batchKey(size)] = Object.fromEntries(formats.map((f) => [f, round(wire[f] / events)])) as Record<Format, number>;
    figures.cborOverTandem[batchKey(size)] = round(totals.cbor / totals.tandem);
  }
  return figures;
}

/** Order-0 entropy of each field's deltas (timestamps: delta minus the usual interval), bytes/event. */
function deltaEntropyBytesPerEvent(template: Template, records: Record<string, unknown>[]): number {
  let bits = 0;
  for (let f = 0; f < template.fields.length; f++) {
    const field = template.fields[f];
    const counts = new Map<number, number>();
    for (let i = 1; i < records.length; i++) {
      let delta = quantize(template, f, records[i][field.name] as WireValue) - quantize(template, f, records[i - 1][field.name] as WireValue);
      if (field.typeName === 'timestamp') delta -= 60;
      counts.set(delta, (counts.get(delta) ?? 0) + 1);
    }
    const n = records.length - 1;
    for (const count of counts.values()) bits -= (count / n) * Math.log2(count / n) * n;
  }
  return Math.round((bits / (records.length - 1) / 8) * 1000) / 1000;
}

function speed(template: Template, records: Record<string, unknown>[]): { encodeEventsPerSec: number; decodeEventsPerSec: number } {
  const frames = encodeRecordsToFrames(template, records);
  if (!frames.ok) throw new Error(frames.error.message);
  let started = performance.now();
  for (let i = 0; i < 5; i++) encodeRecordsToFrames(template, records);
  const encodeMs = (performance.now() - started) / 5;
  started = performance.now();
  for (let i = 0; i < 5; i++) for (const frame of frames.frames) decodeFrame(frame, registry);
  const decodeMs = (performance.now() - started) / 5;
  return { encodeEventsPerSec: Math.round((records.length / encodeMs) * 1000), decodeEventsPerSec: Math.round((records.length / decodeMs) * 1000) };
}

/** The Espruino Linux binary to measure in, if the user has one (ESPRUINO_BIN). */
function espruinoBinary(): string | null {
  const path = process.env.ESPRUINO_BIN ?? '';
  return path !== '' && existsSync(path) ? path : null;
}

/**
 * Device cost in a real interpreter: the encoder fixture (test/protocol/fixtures/encoder-entry.ts)
 * built as firmware, run in the binary; it encodes 500 events after a warm-up and reports time
 * and JsVars in use before and after.
 */
async function measureEspruino(binary: string): Promise<Record<string, unknown> | null> {
  const workDir = mkdtempSync(join(tmpdir(), 'tandem-wire-bench-'));
  try {
    const bundlePath = join(workDir, 'encoder.js');
    const build = await buildFirmware({ entry: join(repoRoot, 'test', 'protocol', 'fixtures', 'encoder-entry.ts'), outFile: bundlePath, quiet: true });
    if (!build.ok) throw new Error(`encoder fixture did not build: ${build.failures.join('; ')}`);
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir, bundlePath, onConsoleLine: (line) => lines.push(line) });
    const exited = device.start();
    const deadline = Date.now() + 30_000;
    while (!lines.includes('DONE') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await device.stop();
    await exited;
    const cost = lines.find((line) => line.startsWith('COST '));
    const frame = lines.find((line) => line.startsWith('FRAME '));
    if (cost === undefined || frame === undefined) return null;
    const figures = Object.fromEntries(cost.slice(5).split(' ').map((pair) => pair.split('=')).map(([key, value]) => [key, Number(value)]));
    const decoded = decodeFrame(new Uint8Array(Buffer.from(frame.slice(6), 'hex')), registry);
    return {
      binary,
      msPerEvent: Math.round((figures.ms / figures.events) * 1000) / 1000,
      jsVarsRetainedPerEvent: (figures.jsVarsAfter - figures.jsVarsBefore) / figures.events,
      frameDecodedByCloud: decoded.ok && decoded.records.length === 50,
      bundleBytes: build.rawBytes,
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

function table(title: string, perEvent: Record<string, Record<Format, number>>, ratios: Record<string, number>): void {
  printTable(
    title,
    ['batch', 'tandem', 'untemplated', 'json', 'cbor', 'cbor+records', 'msgpack', 'cbor/tandem'],
    Object.entries(perEvent).map(([key, row]) => [key, row.tandem.toFixed(2), row.untemplated.toFixed(2), row.json.toFixed(2), row.cbor.toFixed(2), row.cborRecords.toFixed(2), row.msgpack.toFixed(2), `${ratios[key].toFixed(1)}x`]),
  );
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const referenceCount = options.quick ? 2000 : 7 * 24 * 60;
  const reference = referenceTelemetryStream(1, referenceCount);
  const tenField = powerMeterStream(2, options.quick ? 2000 : 10080);
  console.log(`wire: reference telemetry stream, ${reference.length} readings (seed 1); power-meter stream, ${tenField.length} readings (seed 2)`);

  const referenceFigures = measureStream(telemetryTemplate, reference);
  table('Reference telemetry stream: bytes per event', referenceFigures.bytesPerEvent, referenceFigures.cborOverTandem);
  printTable(
    `Reference stream: bytes per event on the wire, in MQTT QoS 1 PUBLISH to ${uplinkTopic(deviceId)}`,
    ['batch', ...formats],
    Object.entries(referenceFigures.mqttBytesPerEvent).map(([key, row]) => [key, ...formats.map((f) => row[f].toFixed(2))]),
  );
  const tenFieldFigures = measureStream(powerMeterTemplate, tenField);
  table('10-field power-meter stream: bytes per event', tenFieldFigures.bytesPerEvent, tenFieldFigures.cborOverTandem);

  const recordBuffer = new Uint8Array(64);
  let recordBytes = 0;
  for (const record of reference) {
    recordBytes += encodeRecord(telemetryTemplate, telemetryTemplate.fields.map((field) => record[field.name]), recordBuffer, 0, recordBuffer.length);
  }
  const entropy = deltaEntropyBytesPerEvent(telemetryTemplate, reference);
  const speeds = speed(telemetryTemplate, reference);

  const binary = options.quick ? null : espruinoBinary();
  const espruino = binary === null ? null : await measureEspruino(binary);
  if (espruino !== null) {
    printTable(`Device cost in the real Espruino binary (${binary})`, ['figure', 'value'], [
      ['encode, ms per event (x86 host; an ESP32 is about 10x slower)', String(espruino.msPerEvent)],
      ['JsVars retained per event', String(espruino.jsVarsRetainedPerEvent)],
      ['its frame decoded by the cloud', String(espruino.frameDecodedByCloud)],
    ]);
  } else {
    console.log(options.quick ? 'wire: --quick, real Espruino not measured' : 'wire: no Espruino binary (ESPRUINO_BIN), device cost not measured');
  }

  const batch50 = referenceFigures.bytesPerEvent.batch50.tandem;
  const ratiosFrom10 = [referenceFigures, tenFieldFigures].flatMap((figures) => ['batch10', 'batch50', 'batch200'].map((key) => figures.cborOverTandem[key]));
  const minimumRatio = Math.min(...ratiosFrom10);
  printTable('Targets and context', ['figure', 'value', 'target'], [
    ['reference stream, batch of 50, bytes/event', batch50.toFixed(3), '<= 3'],
    ['smallest CBOR/tandem ratio, batches >= 10, both streams', `${minimumRatio.toFixed(1)}x`, '>= 8x'],
    ['order-0 entropy of per-field deltas, bytes/event', entropy.toFixed(3), '(about 0.5)'],
    ['single record as cached on the device, bytes/event', (recordBytes / reference.length).toFixed(2), ''],
    ['largest frame', `${wireFrameBytesMax} bytes`, ''],
    ['encode (Node, objects to frames), events/s', speeds.encodeEventsPerSec.toLocaleString('en-US'), ''],
    ['decode (Node, frames to objects), events/s', speeds.decodeEventsPerSec.toLocaleString('en-US'), ''],
  ]);
  return {
    quick: options.quick,
    streams: { reference: { events: reference.length, seed: 1 }, tenField: { template: 'power-meter', events: tenField.length, seed: 2 } },
    bytesPerEvent: referenceFigures.bytesPerEvent,
    mqttBytesPerEvent: referenceFigures.mqttBytesPerEvent,
    cborOverTandem: referenceFigures.cborOverTandem,
    tenField: tenFieldFigures,
    cachedRecordBytesPerEvent: Math.round((recordBytes / reference.length) * 1000) / 1000,
    deltaEntropyBytesPerEvent: entropy,
    ...speeds,
    ...(espruino !== null ? { espruino } : {}),
    targets: { batch50AtMost3: batch50 <= 3, cborAtLeast8xFromBatch10: minimumRatio >= 8, minimumCborRatio: Math.round(minimumRatio * 10) / 10 },
  };
}
