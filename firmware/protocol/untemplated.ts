// The untemplated fallback [WIRE-50..WIRE-55]: a compact self-describing encoding for small
// JSON-like records (null, booleans, numbers, byte strings, arrays, objects) with no template,
// so any event still reaches the cloud; it costs more bytes than a template. Object keys seen
// once per frame are sent again as a one-byte back-reference. Firmware-grade: encoding writes
// into the caller's buffer (bounded recursion, no allocation); decoding builds the values.
import { readVarint, writeVarint } from './bits.ts';
import { crc32, type Crc32 } from './crc32.ts';
import { frameTypeUntemplated, wireProtocolVersion } from './frame.ts';
import { wireFrameBytesMax, wireRecordsPerFrameMax, wireUntemplatedDepthMax, wireUntemplatedKeysMax } from './limits.ts';
import {
  wireErrorCode,
  wireErrorCount,
  wireErrorCrc,
  wireErrorDepth,
  wireErrorFrameSize,
  wireErrorFrameType,
  wireErrorFull,
  wireErrorRange,
  wireErrorTag,
  wireErrorTrailing,
  wireErrorTruncated,
  wireErrorType,
  wireErrorVersion,
  wireOk,
} from './wire-errors.ts';

/** [WIRE-51] Tag bytes. */
export const tagUintInlineMax = 0x7f; // 0x00..0x7f: the integers 0..127 themselves
export const tagStringInline = 0x80; // 0x80..0x9f: a string of 0..31 bytes follows
export const tagObjectInline = 0xa0; // 0xa0..0xaf: an object of 0..15 entries follows
export const tagArrayInline = 0xb0; // 0xb0..0xbf: an array of 0..15 items follows
export const tagNull = 0xc0;
export const tagFalse = 0xc1;
export const tagTrue = 0xc2;
export const tagUint = 0xc3; // varint
export const tagNegative = 0xc4; // varint n, value -1-n
export const tagFloat32 = 0xc5; // 4 bytes little-endian
export const tagFloat64 = 0xc6; // 8 bytes little-endian
export const tagString = 0xc7; // varint length, bytes
export const tagObject = 0xc8; // varint count, entries
export const tagArray = 0xc9; // varint count, items
export const tagNegativeInline = 0xe0; // 0xe0..0xff: the integers -32..-1 (-32 + low 5 bits)

const numberView = new DataView(new ArrayBuffer(8), 0, 8);
const safeIntegerMax = 9007199254740991;

export interface UntemplatedEncoder {
  crc: Crc32;
  bytes: Uint8Array;
  start: number;
  end: number;
  position: number;
  count: number;
  countOffset: number;
  open: boolean;
  /** Offsets and lengths (in `bytes`) of the literal keys written so far in this frame. */
  keyOffsets: Uint32Array;
  keyLengths: Uint8Array;
  keyCount: number;
}

export function createUntemplatedEncoder(crc?: Crc32): UntemplatedEncoder {
  return {
    crc: crc !== undefined ? crc : crc32,
    bytes: new Uint8Array(0),
    start: 0,
    end: 0,
    position: 0,
    count: 0,
    countOffset: 0,
    open: false,
    keyOffsets: new Uint32Array(wireUntemplatedKeysMax),
    keyLengths: new Uint8Array(wireUntemplatedKeysMax),
    keyCount: 0,
  };
}

/** [WIRE-50] Starts an untemplated frame: type, version, count (patched), first sequence. */
export function untemplatedEncodeBegin(enc: UntemplatedEncoder, bytes: Uint8Array, offset: number, length: number, firstSeq: number): number {
  const end = offset + (length < wireFrameBytesMax ? length : wireFrameBytesMax);
  enc.bytes = bytes;
  enc.start = offset;
  enc.end = end;
  enc.count = 0;
  enc.keyCount = 0;
  enc.open = false;
  if (offset + 3 > end - 4) return wireErrorFull;
  bytes[offset] = frameTypeUntemplated;
  bytes[offset + 1] = wireProtocolVersion;
  bytes[offset + 2] = 0;
  enc.countOffset = offset + 2;
  const at = writeVarint(bytes, offset + 3, end - 4, firstSeq);
  if (at < 0) return wireErrorFull;
  enc.position = at;
  enc.open = true;
  return wireOk;
}

function put(enc: UntemplatedEncoder, at: number, byte: number): number {
  if (at < 0 || at >= enc.end - 4) return wireErrorFull;
  enc.bytes[at] = byte;
  return at + 1;
}

function putText(enc: UntemplatedEncoder, at: number, text: string): number {
  if (at < 0) return at;
  if (at + text.length > enc.end - 4) return wireErrorFull;
  for (let i = 0; i < text.length; i++) enc.bytes[at + i] = text.charCodeAt(i);
  return at + text.length;
}

function isByteString(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 255) return false;
  return true;
}

/** [WIRE-54] Whole numbers as integers, else float32 when exact, else float64. */
function putNumber(enc: UntemplatedEncoder, at: number, value: number): number {
  if (value !== value || value === Infinity || value === -Infinity) return wireErrorType;
  if (value === Math.floor(value) && value <= safeIntegerMax && value >= -safeIntegerMax) {
    if (value >= 0 && value <= tagUintInlineMax) return put(enc, at, value);
    if (value < 0 && value >= -32) return put(enc, at, tagNegativeInline + (value + 32));
    const next = put(enc, at, value >= 0 ? tagUint : tagNegative);
    if (next < 0) return next;
    const end = writeVarint(enc.bytes, next, enc.end - 4, value >= 0 ? value : -value - 1);
    return end < 0 ? wireErrorFull : end;
  }
  numberView.setFloat32(0, value, true);
  const single = numberView.getFloat32(0, true) === value;
  const size = single ? 4 : 8;
  if (at + 1 + size > enc.end - 4) return wireErrorFull;
  enc.bytes[at] = single ? tagFloat32 : tagFloat64;
  if (!single) numberView.setFloat64(0, value, true);
  for (let i = 0; i < size; i++) enc.bytes[at + 1 + i] = numberView.getUint8(i);
  return at + 1 + size;
}

function putLengthTag(enc: UntemplatedEncoder, at: number, inlineTag: number, inlineMax: number, longTag: number, length: number): number {
  if (length <= inlineMax) return put(enc, at, inlineTag + length);
  const next = put(enc, at, longTag);
  if (next < 0) return next;
  const end = writeVarint(enc.bytes, next, enc.end - 4, length);
  return end < 0 ? wireErrorFull : end;
}

/** [WIRE-52] A key: back-reference `index*2+1` if written before in this frame, else `length*2` and the bytes. */
function putKey(enc: UntemplatedEncoder, at: number, key: string): number {
  if (!isByteString(key)) return wireErrorType;
  const bytes = enc.bytes;
  for (let k = 0; k < enc.keyCount; k++) {
    const length = enc.keyLengths[k];
    if (length !== key.length) continue;
    const from = enc.keyOffsets[k];
    let same = true;
    for (let i = 0; i < length; i++) {
      if (bytes[from + i] !== key.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) {
      const end = writeVarint(bytes, at, enc.end - 4, k * 2 + 1);
      return end < 0 ? wireErrorFull : end;
    }
  }
  const next = writeVarint(bytes, at, enc.end - 4, key.length * 2);
  if (next < 0) return wireErrorFull;
  const end = putText(enc, next, key);
  if (end >= 0 && enc.keyCount < wireUntemplatedKeysMax && key.length <= 255) {
    enc.keyOffsets[enc.keyCount] = next;
    enc.keyLengths[enc.keyCount] = key.length;
    enc.keyCount++;
  }
  return end;
}

function putValue(enc: UntemplatedEncoder, at: number, value: unknown, depth: number): number {
  if (value === null) return put(enc, at, tagNull);
  if (value === false) return put(enc, at, tagFalse);
  if (value === true) return put(enc, at, tagTrue);
  if (typeof value === 'number') return putNumber(enc, at, value);
  if (typeof value === 'string') {
    if (!isByteString(value)) return wireErrorType;
    return putText(enc, putLengthTag(enc, at, tagStringInline, 31, tagString, value.length), value);
  }
  if (typeof value !== 'object') return wireErrorType;
  if (depth >= wireUntemplatedDepthMax) return wireErrorDepth;
  if (Array.isArray(value)) {
    let next = putLengthTag(enc, at, tagArrayInline, 15, tagArray, value.length);
    for (let i = 0; i < value.length && next >= 0; i++) next = putValue(enc, next, value[i], depth + 1);
    return next;
  }
  const record = value as Record<string, unknown>;
  let entries = 0;
  for (const key in record) if (record[key] !== undefined) entries++;
  let next = putLengthTag(enc, at, tagObjectInline, 15, tagObject, entries);
  for (const key in record) {
    if (next < 0) break;
    if (record[key] === undefined) continue;
    next = putKey(enc, next, key);
    if (next >= 0) next = putValue(enc, next, record[key], depth + 1);
  }
  return next;
}

/**
 * [WIRE-50] Appends one record (any JSON-like value; undefined object members are skipped as
 * JSON does). Returns wireOk, wireErrorFull (the frame so far stays valid), wireErrorType
 * (a function, NaN, a char code above 255 ...) or wireErrorDepth.
 */
export function untemplatedEncodeAppend(enc: UntemplatedEncoder, value: unknown): number {
  if (!enc.open) throw new Error('untemplatedEncodeAppend before untemplatedEncodeBegin');
  if (enc.count >= wireRecordsPerFrameMax) return wireErrorFull;
  const keyCount = enc.keyCount;
  const at = putValue(enc, enc.position, value, 0);
  if (at < 0) {
    // Keys first written by the failed record are gone with it.
    enc.keyCount = keyCount;
    return at;
  }
  enc.position = at;
  enc.count++;
  return wireOk;
}

/** Patches the count and appends the CRC-32; returns the frame length or wireErrorCount. */
export function untemplatedEncodeFinish(enc: UntemplatedEncoder): number {
  if (!enc.open) throw new Error('untemplatedEncodeFinish before untemplatedEncodeBegin');
  enc.open = false;
  if (enc.count === 0) return wireErrorCount;
  const bytes = enc.bytes;
  bytes[enc.countOffset] = enc.count;
  const length = enc.position - enc.start;
  const crc = enc.crc(bytes, enc.start, length) >>> 0;
  bytes[enc.position] = crc & 0xff;
  bytes[enc.position + 1] = (crc >>> 8) & 0xff;
  bytes[enc.position + 2] = (crc >>> 16) & 0xff;
  bytes[enc.position + 3] = (crc >>> 24) & 0xff;
  return length + 4;
}

/** The result of untemplatedDecode: code, then (when wireOk) the first sequence and the records. */
export interface UntemplatedFrame {
  code: number;
  firstSeq: number;
  records: unknown[];
}

interface DecodeState {
  bytes: Uint8Array;
  position: number;
  end: number;
  keys: string[];
  code: number;
}

function takeText(s: DecodeState, length: number): string | null {
  if (length > s.end - s.position) {
    s.code = wireErrorTruncated;
    return null;
  }
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(s.bytes[s.position + i]);
  s.position += length;
  return text;
}

function takeVarint(s: DecodeState): number {
  const value = readVarint(s.bytes, s, s.end);
  if (value < 0) s.code = value;
  return value;
}

function takeFloat(s: DecodeState, size: number): number {
  if (s.position + size > s.end) {
    s.code = wireErrorTruncated;
    return 0;
  }
  for (let i = 0; i < size; i++) numberView.setUint8(i, s.bytes[s.position + i]);
  s.position += size;
  const value = size === 4 ? numberView.getFloat32(0, true) : numberView.getFloat64(0, true);
  if (value !== value || value === Infinity || value === -Infinity) s.code = wireErrorRange;
  return value;
}

function takeKey(s: DecodeState): string | null {
  const k = takeVarint(s);
  if (k < 0) return null;
  if (k % 2 === 1) {
    const index = (k - 1) / 2;
    if (index >= s.keys.length) {
      s.code = wireErrorRange;
      return null;
    }
    return s.keys[index];
  }
  const key = takeText(s, k / 2);
  if (key !== null && s.keys.length < wireUntemplatedKeysMax && key.length <= 255) s.keys.push(key);
  return key;
}

function setMember(target: Record<string, unknown>, key: string, value: unknown): void {
  // A key named __proto__ from the wire must become a plain member, never the prototype.
  if (key === '__proto__') Object.defineProperty(target, key, { value: value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function takeValue(s: DecodeState, depth: number): unknown {
  if (s.position >= s.end) {
    s.code = wireErrorTruncated;
    return null;
  }
  const tag = s.bytes[s.position];
  s.position++;
  if (tag <= tagUintInlineMax) return tag;
  if (tag >= tagNegativeInline) return tag - tagNegativeInline - 32;
  if (tag === tagNull) return null;
  if (tag === tagFalse) return false;
  if (tag === tagTrue) return true;
  if (tag === tagUint) {
    const value = takeVarint(s);
    // Values below 128 have a shorter form: a longer one is not canonical.
    if (value >= 0 && value <= tagUintInlineMax) s.code = wireErrorCode;
    return value;
  }
  if (tag === tagNegative) return -takeVarint(s) - 1;
  if (tag === tagFloat32) return takeFloat(s, 4);
  if (tag === tagFloat64) return takeFloat(s, 8);
  let length: number;
  let kind: number;
  if (tag >= tagStringInline && tag < tagStringInline + 32) {
    length = tag - tagStringInline;
    kind = tagString;
  } else if (tag >= tagObjectInline && tag < tagObjectInline + 16) {
    length = tag - tagObjectInline;
    kind = tagObject;
  } else if (tag >= tagArrayInline && tag < tagArrayInline + 16) {
    length = tag - tagArrayInline;
    kind = tagArray;
  } else if (tag === tagString || tag === tagObject || tag === tagArray) {
    length = takeVarint(s);
    if (length < 0) return null;
    kind = tag;
  } else {
    s.code = wireErrorTag;
    return null;
  }
  if (kind === tagString) return takeText(s, length);
  if (depth >= wireUntemplatedDepthMax) {
    s.code = wireErrorDepth;
    return null;
  }
  // Every item takes at least one byte: a count beyond the bytes left is a lie, refused before
  // anything is allocated for it.
  if (length > s.end - s.position) {
    s.code = wireErrorTruncated;
    return null;
  }
  if (kind === tagArray) {
    const items: unknown[] = [];
    for (let i = 0; i < length; i++) {
      const item = takeValue(s, depth + 1);
      if (s.code !== wireOk) return null;
      items.push(item);
    }
    return items;
  }
  const record: Record<string, unknown> = {};
  for (let i = 0; i < length; i++) {
    const key = takeKey(s);
    if (s.code !== wireOk || key === null) return null;
    const item = takeValue(s, depth + 1);
    if (s.code !== wireOk) return null;
    setMember(record, key, item);
  }
  return record;
}

/**
 * [WIRE-50] Decodes a whole untemplated frame. Never throws on bad input: `code` is wireOk or a
 * negative wire code, and `records` is empty unless it is wireOk.
 */
export function untemplatedDecode(bytes: Uint8Array, offset: number, length: number, crc?: Crc32): UntemplatedFrame {
  const result: UntemplatedFrame = { code: wireOk, firstSeq: 0, records: [] };
  const checksum = crc !== undefined ? crc : crc32;
  if (length > wireFrameBytesMax) result.code = wireErrorFrameSize;
  else if (length < 2) result.code = wireErrorTruncated;
  else if (bytes[offset] !== frameTypeUntemplated) result.code = wireErrorFrameType;
  else if (bytes[offset + 1] !== wireProtocolVersion) result.code = wireErrorVersion;
  else if (length < 8) result.code = wireErrorTruncated;
  if (result.code !== wireOk) return result;
  const end = offset + length - 4;
  const stored = bytes[end] + bytes[end + 1] * 256 + bytes[end + 2] * 65536 + bytes[end + 3] * 16777216;
  if (checksum(bytes, offset, length - 4) >>> 0 !== stored) {
    result.code = wireErrorCrc;
    return result;
  }
  const count = bytes[offset + 2];
  if (count < 1 || count > wireRecordsPerFrameMax) {
    result.code = wireErrorCount;
    return result;
  }
  const s: DecodeState = { bytes: bytes, position: offset + 3, end: end, keys: [], code: wireOk };
  const firstSeq = takeVarint(s);
  const records: unknown[] = [];
  for (let i = 0; i < count && s.code === wireOk; i++) {
    const record = takeValue(s, 0);
    if (s.code === wireOk) records.push(record);
  }
  if (s.code === wireOk && s.position !== end) s.code = wireErrorTrailing;
  result.code = s.code;
  if (s.code === wireOk) {
    result.firstSeq = firstSeq;
    result.records = records;
  }
  return result;
}
