// Batch frames of templated records [WIRE-1..WIRE-4, WIRE-12..WIRE-13]: a byte-aligned header,
// then every record's fields as a bit stream of deltas (adaptive Rice codes of zigzag
// differences), then a CRC-32. The device encodes record by record into a buffer it is given,
// stopping when the next record does not fit: nothing is allocated per event. The cloud decodes
// with the same code. Firmware-grade: runs on Espruino and in Node.
import {
  bitReaderReset,
  bitWriterFlush,
  bitWriterReset,
  createBitReader,
  createBitWriter,
  readBits,
  readBitsWide,
  readExpGolomb,
  readRice,
  readVarint,
  riceEscapeOnes,
  riceParameter,
  riceResetCount,
  unzigzag,
  writeBits,
  writeBitsWide,
  writeExpGolomb,
  writeRice,
  writeVarint,
  zigzag,
  type BitReader,
  type BitWriter,
} from './bits.ts';
import { crc32, type Crc32 } from './crc32.ts';
import { wireFrameBytesMax, wireRecordsPerFrameMax, wireTemplateFieldsMax } from './limits.ts';
import { decodeRecord } from './record.ts';
import {
  checkValue,
  dequantize,
  f32Bits,
  f32FromBits,
  fieldBool,
  fieldEnum,
  fieldFixed,
  fieldInt,
  fieldUint,
  fieldF32,
  fieldString,
  fieldTimestamp,
  findTemplateByHash,
  numberMaxQ,
  numberMinQ,
  quantize,
  type Template,
  type TemplateRegistry,
  type WireValue,
} from './template.ts';
import {
  wireErrorCount,
  wireErrorCrc,
  wireErrorFrameSize,
  wireErrorFrameType,
  wireErrorFull,
  wireErrorRange,
  wireErrorTrailing,
  wireErrorTruncated,
  wireErrorUnknownTemplate,
  wireErrorVersion,
  wireOk,
} from './wire-errors.ts';

/** [WIRE-1][WIRE-70] The first byte of every frame (and uplink payload) names its type. */
export const frameTypeBatch = 0x01;
export const frameTypeUntemplated = 0x02;
/** [WIRE-1] The second byte: the protocol version this codec writes and reads. */
export const wireProtocolVersion = 1;
/** [WIRE-2] Type, version, template hash (4), count (1), first sequence (>= 1), CRC (4). */
export const frameBytesMin = 12;

// Per-field predictor state, five numbers per field in one Float64Array so that a whole
// snapshot is one native `set` call [WIRE-13].
const slotPrevious = 0;
const slotRiceSum = 1;
const slotRiceCount = 2;
const slotExpectedDelta = 3;
const slotLastDelta = 4;
const slots = 5;

function predictorReset(state: Float64Array, fieldCount: number): void {
  for (let f = 0; f < fieldCount; f++) {
    const at = f * slots;
    state[at + slotPrevious] = 0;
    state[at + slotRiceSum] = 1;
    state[at + slotRiceCount] = 1;
    state[at + slotExpectedDelta] = 0;
    state[at + slotLastDelta] = 0;
  }
}

/** [WIRE-13] Codes `value` (>= 0) with the field's adaptive Rice parameter, then updates it. */
function writeAdaptive(w: BitWriter, state: Float64Array, at: number, value: number): void {
  // riceParameter, writeRice's usual case and adaptiveUpdate, inlined: this runs for most fields
  // of every record, and on Espruino a call costs far more than the arithmetic.
  let sum = state[at + slotRiceSum];
  let count = state[at + slotRiceCount];
  let k = 0;
  let scale = 1;
  while (count * scale < sum && k < 30) {
    scale *= 2;
    k++;
  }
  const quotient = Math.floor(value / scale);
  const length = quotient + 1 + k;
  if (quotient < riceEscapeOnes && length <= 24) writeBits(w, ((1 << quotient) - 1) * 2 * scale + (value - quotient * scale), length);
  else writeRice(w, value, k);
  sum += value;
  count += 1;
  if (count >= riceResetCount) {
    sum = Math.floor(sum / 2);
    count = count / 2;
  }
  state[at + slotRiceSum] = sum;
  state[at + slotRiceCount] = count;
}

function adaptiveUpdate(state: Float64Array, at: number, value: number): void {
  let sum = state[at + slotRiceSum] + value;
  let count = state[at + slotRiceCount] + 1;
  if (count >= riceResetCount) {
    sum = Math.floor(sum / 2);
    count = count / 2;
  }
  state[at + slotRiceSum] = sum;
  state[at + slotRiceCount] = count;
}

function readAdaptive(r: BitReader, state: Float64Array, at: number): number {
  const value = readRice(r, riceParameter(state[at + slotRiceSum], state[at + slotRiceCount]));
  if (value >= 0) adaptiveUpdate(state, at, value);
  return value;
}

export interface FrameEncoder {
  crc: Crc32;
  template: Template | null;
  bytes: Uint8Array;
  start: number;
  end: number;
  countOffset: number;
  /** Where the base timestamp (if any) and the bit stream begin. */
  headerEnd: number;
  count: number;
  base: number;
  writer: BitWriter;
  state: Float64Array;
  saved: Float64Array;
  texts: string[];
  savedTexts: string[];
  /** The template has a string field (only then are texts saved for rollback). */
  hasText: boolean;
  /** The record's quantized values, by field, between checking and writing. */
  quantized: Float64Array;
  /** Scratch for frameEncodeAppendRecord. */
  scratch: WireValue[];
  /** Field index of the last value error (-1 if none), so callers can name it. */
  errorField: number;
}

/**
 * One encoder, made at start-up and reused for every frame. `crc` defaults to the JS table
 * version; the device passes native E.CRC32 [WIRE-5]. `fieldsMax` (default and at most
 * wireTemplateFieldsMax) is the most fields of any template it will encode: the predictor
 * arrays are sized by it, so a device with small templates pays less memory.
 */
export function createFrameEncoder(crc?: Crc32, fieldsMax?: number): FrameEncoder {
  const fields = fieldsMax !== undefined && fieldsMax < wireTemplateFieldsMax ? fieldsMax : wireTemplateFieldsMax;
  // texts, savedTexts and scratch fill in on first use: Espruino arrays cost JsVars per element.
  return {
    crc: crc !== undefined ? crc : crc32,
    template: null,
    bytes: new Uint8Array(0),
    start: 0,
    end: 0,
    countOffset: 0,
    headerEnd: 0,
    count: 0,
    base: 0,
    writer: createBitWriter(),
    state: new Float64Array(fields * slots),
    saved: new Float64Array(fields * slots),
    texts: [],
    savedTexts: [],
    hasText: false,
    quantized: new Float64Array(fields),
    scratch: [],
    errorField: -1,
  };
}

/**
 * [WIRE-2] Starts a frame of `template` records in `bytes[offset .. offset+length)` (capped at
 * wireFrameBytesMax). `firstSeq` is the sequence number of the first record (the sync session's
 * to define; 0 if unused). Returns wireOk or wireErrorFull.
 */
export function frameEncodeBegin(enc: FrameEncoder, template: Template, bytes: Uint8Array, offset: number, length: number, firstSeq: number): number {
  if (template.kinds.length > enc.quantized.length) throw new Error('template ' + template.name + ' has more fields than the encoder was made for');
  const end = offset + (length < wireFrameBytesMax ? length : wireFrameBytesMax);
  enc.template = template;
  enc.bytes = bytes;
  enc.start = offset;
  enc.end = end;
  enc.count = 0;
  enc.errorField = -1;
  if (offset + 7 > end) return wireErrorFull;
  const hash = template.hash;
  bytes[offset] = frameTypeBatch;
  bytes[offset + 1] = wireProtocolVersion;
  bytes[offset + 2] = hash & 0xff;
  bytes[offset + 3] = (hash >>> 8) & 0xff;
  bytes[offset + 4] = (hash >>> 16) & 0xff;
  bytes[offset + 5] = (hash >>> 24) & 0xff;
  enc.countOffset = offset + 6;
  bytes[offset + 6] = 0;
  const at = writeVarint(bytes, offset + 7, end - 4, firstSeq);
  if (at < 0) return wireErrorFull;
  enc.headerEnd = at;
  enc.hasText = false;
  for (let f = 0; f < template.kinds.length; f++) if (template.kinds[f] === fieldString) enc.hasText = true;
  predictorReset(enc.state, template.kinds.length);
  return wireOk;
}

function writeText(w: BitWriter, text: string): void {
  writeExpGolomb(w, text.length);
  for (let i = 0; i < text.length; i++) writeBits(w, text.charCodeAt(i), 8);
}

/**
 * [WIRE-3] A timestamp: the first record's primary timestamp is the header's base; later ones
 * are coded against the expected interval, the last delta seen twice in a row.
 */
function writeTimestamp(enc: FrameEncoder, w: BitWriter, state: Float64Array, at: number, q: number, index: number, primary: boolean): void {
  if (index === 0) {
    if (!primary) writeExpGolomb(w, zigzag(q - enc.base));
  } else {
    const delta = q - state[at + slotPrevious];
    if (index === 1) {
      writeExpGolomb(w, zigzag(delta));
      state[at + slotExpectedDelta] = delta;
    } else {
      writeAdaptive(w, state, at, zigzag(delta - state[at + slotExpectedDelta]));
      if (delta === state[at + slotLastDelta]) state[at + slotExpectedDelta] = delta;
    }
    state[at + slotLastDelta] = delta;
  }
  state[at + slotPrevious] = q;
}

/** [WIRE-3] bool, f32 and string fields. */
function writeOther(enc: FrameEncoder, w: BitWriter, state: Float64Array, at: number, f: number, kind: number, value: WireValue, index: number): void {
  if (kind === fieldBool) {
    writeBits(w, value === true ? 1 : 0, 1);
  } else if (kind === fieldF32) {
    const bits = f32Bits(value as number);
    if (index > 0) {
      if (bits === state[at + slotPrevious]) {
        writeBits(w, 0, 1);
        return;
      }
      writeBits(w, 1, 1);
    }
    writeBitsWide(w, bits, 32);
    state[at + slotPrevious] = bits;
  } else {
    const text = value as string;
    if (index > 0) {
      if (text === enc.texts[f]) {
        writeBits(w, 0, 1);
        return;
      }
      writeBits(w, 1, 1);
    }
    writeText(w, text);
    enc.texts[f] = text;
  }
}

/**
 * [WIRE-3] Appends one record (`values[i]` = field i; a preallocated array the caller reuses).
 * Returns wireOk; wireErrorType/wireErrorRange with enc.errorField set for a bad value; or
 * wireErrorFull when the record does not fit (by bytes or by count): the frame so far stays
 * valid, finish it and start the next one with this record.
 */
export function frameEncodeAppend(enc: FrameEncoder, values: ArrayLike<WireValue>): number {
  const template = enc.template;
  if (template === null) throw new Error('frameEncodeAppend before frameEncodeBegin');
  const kinds = template.kinds;
  const count = kinds.length;
  const quantized = enc.quantized;
  // [WIRE-24] Check and quantize every value before writing anything. (Inlining checkValue's
  // numeric rules here measured no faster on Espruino, whose cost follows the tokens it reads.)
  for (let f = 0; f < count; f++) {
    const code = checkValue(template, f, values[f]);
    if (code !== wireOk) {
      enc.errorField = f;
      return code;
    }
    quantized[f] = quantize(template, f, values[f]);
  }
  enc.errorField = -1;
  if (enc.count >= wireRecordsPerFrameMax) return wireErrorFull;
  const w = enc.writer;
  const state = enc.state;
  const index = enc.count;
  const tsField = template.timestampField;
  if (index === 0) {
    let at = enc.headerEnd;
    if (tsField >= 0) {
      enc.base = quantized[tsField];
      at = writeVarint(enc.bytes, at, enc.end - 4, enc.base);
      if (at < 0) return wireErrorFull;
    }
    bitWriterReset(w, enc.bytes, at, enc.end - 4);
  } else {
    enc.saved.set(state);
    if (enc.hasText) for (let f = 0; f < count; f++) if (kinds[f] === fieldString) enc.savedTexts[f] = enc.texts[f];
  }
  const savedPosition = w.position;
  const savedPending = w.pending;
  const savedPendingBits = w.pendingBits;

  const numbers = template.numbers;
  for (let f = 0; f < count; f++) {
    const kind = kinds[f];
    const at = f * slots;
    // Most common kinds first: Espruino reads past every branch it does not take.
    if (kind === fieldUint || kind === fieldInt || kind === fieldFixed || kind === fieldEnum) {
      const q = quantized[f];
      if (index === 0) writeExpGolomb(w, q - numbers[f * 4 + numberMinQ]);
      else {
        const delta = q - state[at + slotPrevious];
        writeAdaptive(w, state, at, delta >= 0 ? delta * 2 : -delta * 2 - 1); // zigzag [WIRE-10]
      }
      state[at + slotPrevious] = q;
    } else if (kind === fieldTimestamp) {
      writeTimestamp(enc, w, state, at, quantized[f], index, f === tsField);
    } else {
      writeOther(enc, w, state, at, f, kind, values[f], index);
    }
  }

  // The record fits only if its last partial byte fits too (it is flushed at the end).
  if (w.overflow || (w.pendingBits > 0 && w.position >= w.limit)) {
    w.overflow = false;
    w.position = savedPosition;
    w.pending = savedPending;
    w.pendingBits = savedPendingBits;
    if (index > 0) {
      state.set(enc.saved);
      if (enc.hasText) for (let f = 0; f < count; f++) if (kinds[f] === fieldString) enc.texts[f] = enc.savedTexts[f];
    }
    return wireErrorFull;
  }
  enc.count = index + 1;
  return wireOk;
}

/**
 * Appends a record stored by encodeRecord (the event cache's format) without the caller
 * decoding it. Returns what frameEncodeAppend returns, or a decode code for a corrupt record.
 */
export function frameEncodeAppendRecord(enc: FrameEncoder, bytes: Uint8Array, offset: number, end: number): number {
  const template = enc.template;
  if (template === null) throw new Error('frameEncodeAppendRecord before frameEncodeBegin');
  const next = decodeRecord(template, bytes, offset, end, enc.scratch);
  if (next < 0) return next;
  return frameEncodeAppend(enc, enc.scratch);
}

/**
 * [WIRE-4] Pads the bit stream, patches the count and appends the CRC-32. Returns the frame's
 * length in bytes, or wireErrorCount for a frame without records.
 */
export function frameEncodeFinish(enc: FrameEncoder): number {
  if (enc.template === null) throw new Error('frameEncodeFinish before frameEncodeBegin');
  if (enc.count === 0) return wireErrorCount;
  const w = enc.writer;
  bitWriterFlush(w);
  const bytes = enc.bytes;
  bytes[enc.countOffset] = enc.count;
  const length = w.position - enc.start;
  const crc = enc.crc(bytes, enc.start, length) >>> 0;
  bytes[w.position] = crc & 0xff;
  bytes[w.position + 1] = (crc >>> 8) & 0xff;
  bytes[w.position + 2] = (crc >>> 16) & 0xff;
  bytes[w.position + 3] = (crc >>> 24) & 0xff;
  enc.template = null;
  return length + 4;
}

export interface FrameDecoder {
  crc: Crc32;
  registry: TemplateRegistry;
  /** After frameDecodeBegin: the frame's template hash (also when unknown), template, count, first sequence. */
  hash: number;
  template: Template | null;
  count: number;
  firstSeq: number;
  /** Records decoded so far. */
  index: number;
  base: number;
  end: number;
  reader: BitReader;
  state: Float64Array;
  /** The previous record's text of each string field. */
  texts: string[];
  cursor: { position: number };
}

export function createFrameDecoder(registry: TemplateRegistry, crc?: Crc32): FrameDecoder {
  return {
    crc: crc !== undefined ? crc : crc32,
    registry: registry,
    hash: 0,
    template: null,
    count: 0,
    firstSeq: 0,
    index: 0,
    base: 0,
    end: 0,
    reader: createBitReader(),
    state: new Float64Array(wireTemplateFieldsMax * slots),
    texts: [],
    cursor: { position: 0 },
  };
}

function readUint32(bytes: Uint8Array, at: number): number {
  return bytes[at] + bytes[at + 1] * 256 + bytes[at + 2] * 65536 + bytes[at + 3] * 16777216;
}

/**
 * [WIRE-4] Checks a frame's size, type, version and CRC-32, finds its template by hash and reads
 * its header. Returns wireOk, then call frameDecodeNext dec.count times; or a negative code.
 */
export function frameDecodeBegin(dec: FrameDecoder, bytes: Uint8Array, offset: number, length: number): number {
  dec.template = null;
  dec.count = 0;
  dec.index = 0;
  if (length > wireFrameBytesMax) return wireErrorFrameSize;
  if (length < 2) return wireErrorTruncated;
  if (bytes[offset] !== frameTypeBatch) return wireErrorFrameType;
  if (bytes[offset + 1] !== wireProtocolVersion) return wireErrorVersion;
  if (length < frameBytesMin) return wireErrorTruncated;
  const end = offset + length - 4;
  if (dec.crc(bytes, offset, length - 4) >>> 0 !== readUint32(bytes, end)) return wireErrorCrc;
  dec.hash = readUint32(bytes, offset + 2);
  const template = findTemplateByHash(dec.registry, dec.hash);
  if (template === null) return wireErrorUnknownTemplate;
  const count = bytes[offset + 6];
  if (count < 1 || count > wireRecordsPerFrameMax) return wireErrorCount;
  const cursor = dec.cursor;
  cursor.position = offset + 7;
  const firstSeq = readVarint(bytes, cursor, end);
  if (firstSeq < 0) return firstSeq;
  if (template.timestampField >= 0) {
    const base = readVarint(bytes, cursor, end);
    if (base < 0) return base;
    if (base > template.numbers[template.timestampField * 4 + numberMaxQ]) return wireErrorRange;
    dec.base = base;
  }
  dec.template = template;
  dec.count = count;
  dec.firstSeq = firstSeq;
  dec.end = end;
  bitReaderReset(dec.reader, bytes, cursor.position, end);
  predictorReset(dec.state, template.kinds.length);
  return wireOk;
}

function readText(r: BitReader, maxLength: number, into: WireValue[], f: number): number {
  const length = readExpGolomb(r);
  if (length < 0) return length;
  if (length > maxLength) return wireErrorRange;
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(readBits(r, 8));
  if (r.overrun) return wireErrorTruncated;
  into[f] = text;
  return wireOk;
}

/**
 * [WIRE-3] Decodes the next record into `into` (index i = field i). Returns wireOk or a negative
 * code; after the last record it also checks that only zero padding is left [WIRE-12].
 */
export function frameDecodeNext(dec: FrameDecoder, into: WireValue[]): number {
  const template = dec.template;
  if (template === null || dec.index >= dec.count) return wireErrorCount;
  const r = dec.reader;
  const state = dec.state;
  const kinds = template.kinds;
  const numbers = template.numbers;
  const index = dec.index;
  const tsField = template.timestampField;
  for (let f = 0; f < kinds.length; f++) {
    const kind = kinds[f];
    const at = f * slots;
    const minQ = numbers[f * 4 + numberMinQ];
    const maxQ = numbers[f * 4 + numberMaxQ];
    if (kind === fieldBool) {
      into[f] = readBits(r, 1) === 1;
    } else if (kind === fieldF32) {
      if (index > 0 && readBits(r, 1) === 0) {
        into[f] = f32FromBits(state[at + slotPrevious]);
        continue;
      }
      const bits = readBitsWide(r, 32);
      const value = f32FromBits(bits);
      if (value !== value || value === Infinity || value === -Infinity) return wireErrorRange;
      state[at + slotPrevious] = bits;
      into[f] = value;
    } else if (kind === fieldString) {
      if (index > 0 && readBits(r, 1) === 0) {
        into[f] = dec.texts[f];
        continue;
      }
      const code = readText(r, maxQ, into, f);
      if (code !== wireOk) return code;
      dec.texts[f] = into[f] as string;
    } else {
      let q: number;
      if (kind === fieldTimestamp) {
        if (index === 0) {
          if (f === tsField) q = dec.base;
          else {
            const z = readExpGolomb(r);
            if (z < 0) return z;
            q = dec.base + unzigzag(z);
          }
        } else {
          let delta: number;
          if (index === 1) {
            const z = readExpGolomb(r);
            if (z < 0) return z;
            delta = unzigzag(z);
            state[at + slotExpectedDelta] = delta;
          } else {
            const z = readAdaptive(r, state, at);
            if (z < 0) return z;
            delta = unzigzag(z) + state[at + slotExpectedDelta];
            if (delta === state[at + slotLastDelta]) state[at + slotExpectedDelta] = delta;
          }
          state[at + slotLastDelta] = delta;
          q = state[at + slotPrevious] + delta;
        }
      } else if (index === 0) {
        const v = readExpGolomb(r);
        if (v < 0) return v;
        q = minQ + v;
      } else {
        const z = readAdaptive(r, state, at);
        if (z < 0) return z;
        q = state[at + slotPrevious] + unzigzag(z);
      }
      if (!(q >= minQ && q <= maxQ)) return wireErrorRange;
      state[at + slotPrevious] = q;
      into[f] = dequantize(template, f, q);
    }
  }
  if (r.overrun) return wireErrorTruncated;
  dec.index = index + 1;
  if (dec.index === dec.count) {
    if (r.pending !== 0 || r.position !== dec.end) return wireErrorTrailing;
  }
  return wireOk;
}

/** The frame type byte of a frame (for dispatch), or -1 for an empty one. */
export function frameType(bytes: Uint8Array, offset: number, length: number): number {
  return length > 0 ? bytes[offset] : -1;
}
