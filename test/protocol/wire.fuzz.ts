// Seeded fuzzer for every wire decoder [WIRE-40]: random bytes and mutated valid frames (with the
// CRC fixed up most of the time, so the mutations reach the record decoder) fed to the batch,
// untemplated, single-record and frame-file decoders. They may only answer with a code from the
// closed set: never throw, never hang, never return more than the frame can hold. Unmutated frames
// must decode to exactly their records. `fuzz(seed, cases)` is what `npm run fuzz -- wire` calls;
// a short run lives in wire-fuzz.test.ts.
import fc from 'fast-check';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { createFrameDecoder, frameDecodeBegin, frameDecodeNext, type FrameDecoder } from '../../firmware/protocol/frame.ts';
import { wireRecordsPerFrameMax } from '../../firmware/protocol/limits.ts';
import { decodeRecord } from '../../firmware/protocol/record.ts';
import { createTemplateRegistry, type Template, type WireValue } from '../../firmware/protocol/template.ts';
import { allTemplates } from '../../firmware/protocol/templates/index.ts';
import { untemplatedDecode } from '../../firmware/protocol/untemplated.ts';
import { isWireCode, wireErrorName, wireOk } from '../../firmware/protocol/wire-errors.ts';
import { encodeRecordsToFrames, encodeUntemplatedFrames, readFrameFile, valuesToRecord } from '../../firmware/protocol/wire-objects.ts';
import { recordsArbitrary, templateArbitrary } from './random-templates.ts';
import { powerMeterStream, referenceTelemetryStream, seededRandom } from './streams.ts';

export const summary = 'wire codec decoders: batch, untemplated, single record, frame file (firmware/protocol)';

export interface FuzzResult {
  cases: number;
  /** How often each result code came back, by name. */
  codes: Record<string, number>;
  /** Slowest single case, in milliseconds (a hang would show here, or never return). */
  slowestCaseMs: number;
}

interface Corpus {
  templates: Template[];
  frames: { bytes: Uint8Array; records: unknown[] }[];
  decoder: FrameDecoder;
}

/** Valid frames to mutate, built once per seed: the product's templates and random ones. */
function buildCorpus(seed: number): Corpus {
  const random = templateArbitrary.filter((t) => !allTemplates().some((known) => known.hash === t.hash));
  const extra: Template[] = [];
  for (const template of fc.sample(random, { seed, numRuns: 12 })) {
    if (!extra.some((t) => t.hash === template.hash || (t.name === template.name && t.version === template.version))) extra.push(template);
  }
  const templates = [...allTemplates(), ...extra];
  const frames: Corpus['frames'] = [];
  const add = (template: Template | null, records: unknown[]) => {
    const encoded = template === null ? encodeUntemplatedFrames(records) : encodeRecordsToFrames(template, records);
    if (!encoded.ok) return;
    if (encoded.frames.length === 1) frames.push({ bytes: encoded.frames[0], records });
  };
  add(templates[0], referenceTelemetryStream(seed, 50));
  add(templates[1], powerMeterStream(seed, 20));
  for (const template of extra) {
    for (const records of fc.sample(recordsArbitrary(template, 30), { seed: seed + template.hash, numRuns: 3 })) {
      add(template, records.map((values) => valuesToRecord(template, values)));
    }
  }
  add(null, [{ kind: 'boot', ok: true, n: -3, v: 1.5, list: [1, 'x', null] }, { kind: 'wifi', ok: false, rssi: -70 }]);
  add(null, [[1, 2, 3], 'text', 123456789, { a: { b: { c: [0.1] } } }]);
  return { templates, frames, decoder: createFrameDecoder(createTemplateRegistry(templates)) };
}

function fixCrc(bytes: Uint8Array): void {
  if (bytes.length < 5) return;
  const end = bytes.length - 4;
  const crc = crc32(bytes, 0, end);
  bytes[end] = crc & 0xff;
  bytes[end + 1] = (crc >>> 8) & 0xff;
  bytes[end + 2] = (crc >>> 16) & 0xff;
  bytes[end + 3] = crc >>> 24;
}

function mutate(source: Uint8Array, next: () => number): Uint8Array {
  let bytes: Uint8Array = source.slice();
  const below = (n: number) => Math.floor(next() * n);
  const rounds = 1 + below(4);
  for (let round = 0; round < rounds; round++) {
    const at = below(Math.max(1, bytes.length));
    switch (below(7)) {
      case 0: // flip bits in the record area (most of a frame)
        bytes[at] ^= 1 << below(8);
        break;
      case 1:
        bytes[at] = below(256);
        break;
      case 2: // cut
        bytes = bytes.slice(0, below(bytes.length + 1));
        break;
      case 3: { // insert random bytes
        const extra = new Uint8Array(1 + below(8)).map(() => below(256));
        const grown = new Uint8Array(bytes.length + extra.length);
        grown.set(bytes.subarray(0, at));
        grown.set(extra, at);
        grown.set(bytes.subarray(at), at + extra.length);
        bytes = grown;
        break;
      }
      case 4: // header fields: type, version, count
        if (bytes.length > 6) bytes[[0, 1, 6, 2][below(4)]] = [0, 1, 2, 255, below(256)][below(5)];
        break;
      case 5: // delete a run
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + 1 + below(6))]);
        break;
      default: // all ones or zeros over a run, the worst case for unary and Exp-Golomb codes
        bytes.fill(next() < 0.5 ? 0 : 255, at, at + 1 + below(12));
    }
  }
  if (next() < 0.75) fixCrc(bytes);
  return bytes;
}

function count(result: FuzzResult, code: number): void {
  if (!isWireCode(code)) throw new Error(`decoder returned ${code}, which is not a wire code`);
  const name = wireErrorName(code);
  result.codes[name] = (result.codes[name] ?? 0) + 1;
}

/** Values in a decoded untemplated structure; each took at least one byte. */
function valueCount(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce((sum: number, item) => sum + valueCount(item), 0);
  if (typeof value === 'object' && value !== null) return 1 + Object.values(value).reduce((sum: number, item) => sum + valueCount(item), 0);
  return 1;
}

function decodeBatch(corpus: Corpus, bytes: Uint8Array, values: WireValue[]): { code: number; records: number } {
  const decoder = corpus.decoder;
  const begin = frameDecodeBegin(decoder, bytes, 0, bytes.length);
  if (begin !== wireOk) return { code: begin, records: 0 };
  if (decoder.count > wireRecordsPerFrameMax) throw new Error(`count ${decoder.count} above the limit`);
  for (let r = 0; r < decoder.count; r++) {
    const code = frameDecodeNext(decoder, values);
    if (code !== wireOk) return { code, records: r };
  }
  return { code: wireOk, records: decoder.count };
}

function runCase(corpus: Corpus, next: () => number, result: FuzzResult, values: WireValue[]): void {
  const pick = next();
  const source = corpus.frames[Math.floor(next() * corpus.frames.length)];
  let bytes: Uint8Array;
  if (pick < 0.15) {
    bytes = new Uint8Array(Math.floor(next() * 1100)).map(() => Math.floor(next() * 256));
    if (bytes.length > 1 && next() < 0.5) bytes[0] = 1 + Math.floor(next() * 2);
    if (bytes.length > 1 && next() < 0.5) bytes[1] = 1;
    if (next() < 0.5) fixCrc(bytes);
  } else if (pick < 0.2) {
    bytes = source.bytes;
  } else {
    bytes = mutate(source.bytes, next);
  }

  const batch = decodeBatch(corpus, bytes, values);
  count(result, batch.code);
  const loose = untemplatedDecode(bytes, 0, bytes.length);
  count(result, loose.code);
  if (loose.code === wireOk && valueCount(loose.records) > bytes.length) throw new Error('untemplated decode made more values than bytes');

  if (bytes === source.bytes) {
    // An unmutated frame decodes, to exactly its records.
    const code = bytes[0] === 1 ? batch.code : loose.code;
    if (code !== wireOk) throw new Error(`a valid frame failed to decode: ${wireErrorName(code)}`);
    if (bytes[0] === 2 && JSON.stringify(loose.records) !== JSON.stringify(source.records)) throw new Error('untemplated frame decoded to other records');
    if (bytes[0] === 1 && batch.records !== source.records.length) throw new Error('batch frame decoded to another count');
  }

  const template = corpus.templates[Math.floor(next() * corpus.templates.length)];
  const end = decodeRecord(template, bytes, 0, bytes.length, values);
  if (end > bytes.length) throw new Error('decodeRecord ran past the end');
  count(result, end >= 0 ? wireOk : end);
  const file = readFrameFile(bytes);
  count(result, file.code);
}

/** Runs `cases` seeded cases; throws (naming seed and case) on the first property violation. */
export function fuzz(seed: number, cases: number): FuzzResult {
  const corpus = buildCorpus(seed);
  const next = seededRandom(seed);
  const result: FuzzResult = { cases: 0, codes: {}, slowestCaseMs: 0 };
  const values: WireValue[] = [];
  for (let i = 0; i < cases; i++) {
    const started = performance.now();
    try {
      runCase(corpus, next, result, values);
    } catch (error) {
      throw new Error(`wire fuzz seed ${seed} case ${i}: ${(error as Error).message}`, { cause: error });
    }
    const ms = performance.now() - started;
    if (ms > result.slowestCaseMs) result.slowestCaseMs = ms;
    result.cases++;
  }
  return result;
}
