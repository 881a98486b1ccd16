// Single records and single values, byte-aligned [WIRE-30..WIRE-33]: what the event cache stores
// per event and the state store per key. No deltas (each record stands alone), so any record can
// be read, dropped or re-encoded into a batch frame on its own. Firmware-grade: encodes into a
// caller's buffer, allocates nothing (decoding a string field allocates that string).
import { readVarint, writeVarint } from './bits.ts';
import {
  checkValue,
  dequantize,
  f32Bits,
  f32FromBits,
  fieldBool,
  fieldF32,
  fieldString,
  numberMaxQ,
  numberMinQ,
  quantize,
  type Template,
  type WireValue,
} from './template.ts';
import { wireErrorFull, wireErrorRange, wireErrorTruncated, wireOk } from './wire-errors.ts';

/**
 * The field index of the last encode error of encodeValue/encodeRecord (-1 if none), so callers
 * can name the field. Set before a negative code is returned; single-threaded on both sides.
 */
export const recordErrorState = { field: -1 };

/**
 * [WIRE-31][WIRE-32] Encodes one value of field `f` of `template` (also a state value, typed by a state template's field) at `offset` (not past `end`). Returns the next offset, or
 * a negative wire code: wireErrorType/wireErrorRange for a bad value, wireErrorFull for no room.
 */
export function encodeValue(template: Template, f: number, value: WireValue, bytes: Uint8Array, offset: number, end: number): number {
  const check = checkValue(template, f, value);
  if (check !== wireOk) return check;
  const k = template.kinds[f];
  if (k === fieldBool) {
    if (offset >= end) return wireErrorFull;
    bytes[offset] = value === true ? 1 : 0;
    return offset + 1;
  }
  if (k === fieldF32) {
    if (offset + 4 > end) return wireErrorFull;
    const bits = f32Bits(value as number);
    bytes[offset] = bits & 0xff;
    bytes[offset + 1] = (bits >>> 8) & 0xff;
    bytes[offset + 2] = (bits >>> 16) & 0xff;
    bytes[offset + 3] = (bits >>> 24) & 0xff;
    return offset + 4;
  }
  if (k === fieldString) {
    const text = value as string;
    let at = writeVarint(bytes, offset, end, text.length);
    if (at < 0 || at + text.length > end) return wireErrorFull;
    for (let i = 0; i < text.length; i++) bytes[at + i] = text.charCodeAt(i);
    at += text.length;
    return at;
  }
  // uint, int, fixed, enum, timestamp: the distance from the field's minimum, never negative.
  const at = writeVarint(bytes, offset, end, quantize(template, f, value) - template.numbers[f * 4 + numberMinQ]);
  return at < 0 ? wireErrorFull : at;
}

/**
 * [WIRE-31] Decodes one value of field `f` of `template` from `cursor.position` into `into[index]`; advances the
 * cursor and returns wireOk, or a negative wire code (truncated, over-long, out of range).
 */
export function decodeValue(template: Template, f: number, bytes: Uint8Array, cursor: { position: number }, end: number, into: WireValue[], index: number): number {
  const k = template.kinds[f];
  const at = cursor.position;
  if (k === fieldBool) {
    if (at >= end) return wireErrorTruncated;
    const b = bytes[at];
    if (b > 1) return wireErrorRange;
    into[index] = b === 1;
    cursor.position = at + 1;
    return wireOk;
  }
  if (k === fieldF32) {
    if (at + 4 > end) return wireErrorTruncated;
    const bits = bytes[at] + bytes[at + 1] * 256 + bytes[at + 2] * 65536 + bytes[at + 3] * 16777216;
    const value = f32FromBits(bits);
    if (value !== value || value === Infinity || value === -Infinity) return wireErrorRange;
    into[index] = value;
    cursor.position = at + 4;
    return wireOk;
  }
  if (k === fieldString) {
    const length = readVarint(bytes, cursor, end);
    if (length < 0) return length;
    if (length > template.numbers[f * 4 + numberMaxQ]) return wireErrorRange;
    const start = cursor.position;
    if (start + length > end) return wireErrorTruncated;
    let text = '';
    for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[start + i]);
    into[index] = text;
    cursor.position = start + length;
    return wireOk;
  }
  const offsetFromMin = readVarint(bytes, cursor, end);
  if (offsetFromMin < 0) return offsetFromMin;
  const q = template.numbers[f * 4 + numberMinQ] + offsetFromMin;
  if (q > template.numbers[f * 4 + numberMaxQ]) return wireErrorRange;
  into[index] = dequantize(template, f, q);
  return wireOk;
}

/**
 * [WIRE-30] Encodes a whole record: `values[i]` is the value of field i (a preallocated array the
 * caller reuses, so encoding allocates nothing). Returns the next offset or a negative code, with
 * recordErrorState.field naming the field.
 */
export function encodeRecord(template: Template, values: ArrayLike<WireValue>, bytes: Uint8Array, offset: number, end: number): number {
  const count = template.kinds.length;
  let at = offset;
  for (let i = 0; i < count; i++) {
    at = encodeValue(template, i, values[i], bytes, at, end);
    if (at < 0) {
      recordErrorState.field = i;
      return at;
    }
  }
  recordErrorState.field = -1;
  return at;
}

// One cursor reused by decodeRecord: records are decoded one at a time, never re-entrantly.
const recordCursor = { position: 0 };

/** [WIRE-30] Decodes a record into `into` (length >= field count); returns the next offset or a negative code. */
export function decodeRecord(template: Template, bytes: Uint8Array, offset: number, end: number, into: WireValue[]): number {
  const count = template.kinds.length;
  const cursor = recordCursor;
  cursor.position = offset;
  for (let i = 0; i < count; i++) {
    const code = decodeValue(template, i, bytes, cursor, end, into, i);
    if (code !== wireOk) return code;
  }
  return cursor.position;
}
