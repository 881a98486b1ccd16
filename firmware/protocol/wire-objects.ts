// The codec seen from the cloud and the CLI: records as plain objects, Unicode text as UTF-8 on
// the wire, whole frames in and out. These helpers allocate freely; the device uses frame.ts and
// record.ts directly. No Node or Espruino APIs, so it typechecks for both.
import { readVarint, writeVarint } from './bits.ts';
import type { Crc32 } from './crc32.ts';
import {
  createFrameDecoder,
  createFrameEncoder,
  frameDecodeBegin,
  frameDecodeNext,
  frameEncodeAppend,
  frameEncodeBegin,
  frameEncodeFinish,
  frameTypeBatch,
  frameTypeUntemplated,
} from './frame.ts';
import { wireFrameBytesMax, wireTemplateFieldsMax } from './limits.ts';
import { fieldString, numberMaxQ, numberMinQ, templateHashHex, type Template, type TemplateRegistry, type WireValue } from './template.ts';
import { createUntemplatedEncoder, untemplatedDecode, untemplatedEncodeAppend, untemplatedEncodeBegin, untemplatedEncodeFinish } from './untemplated.ts';
import {
  wireErrorFrameType,
  wireErrorFull,
  wireErrorName,
  wireErrorRange,
  wireErrorTruncated,
  wireErrorType,
  wireErrorUnknownTemplate,
  wireOk,
} from './wire-errors.ts';

/** UTF-8 bytes of `text` as a byte string (one char per byte), as the wire carries text. */
export function utf8ToByteString(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + (c - 0xd800) * 1024 + (low - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out += String.fromCharCode(c);
    else if (c < 0x800) out += String.fromCharCode(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out += String.fromCharCode(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out += String.fromCharCode(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

/** Text from a byte string holding UTF-8; bytes that are not valid UTF-8 stay as Latin-1 chars. */
export function byteStringToUtf8(bytes: string): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes.charCodeAt(i);
    let need = 0;
    let c = 0;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      c = b & 31;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      c = b & 15;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      c = b & 7;
    }
    let ok = need > 0 && i + need < bytes.length;
    for (let k = 1; ok && k <= need; k++) {
      const next = bytes.charCodeAt(i + k);
      if (next >= 0x80 && next <= 0xbf) c = c * 64 + (next & 63);
      else ok = false;
    }
    const minimum = need === 1 ? 0x80 : need === 2 ? 0x800 : 0x10000;
    if (ok && c >= minimum && c <= 0x10ffff && !(c >= 0xd800 && c <= 0xdfff)) {
      if (c >= 0x10000) out += String.fromCharCode(0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 1023));
      else out += String.fromCharCode(c);
      i += need + 1;
    } else {
      out += String.fromCharCode(b);
      i++;
    }
  }
  return out;
}

/** An encode error that names what was wrong, for the CLI and the cloud's API. */
export interface RecordError {
  code: number;
  /** Index of the record in the input (0-based). */
  record: number;
  /** Field name, or '' when the record itself is wrong (not an object). */
  field: string;
  message: string;
}

function describe(record: number, field: string, code: number, detail: string): RecordError {
  const where = 'record ' + (record + 1) + (field ? ' field ' + field : '');
  return { code: code, record: record, field: field, message: where + ': ' + detail };
}

function valueDetail(template: Template, f: number, value: unknown, code: number): string {
  const def = template.definition.fields[f];
  const shown = JSON.stringify(value);
  if (value === undefined) return 'missing';
  if (code === wireErrorType) return shown + ' is not a valid ' + def.type;
  let range = '';
  if (def.type === 'enum') range = 'one of ' + (def.values as string[]).join(', ');
  else if (def.type === 'string') range = 'at most ' + def.maxLength + ' bytes (UTF-8)';
  else if (def.type === 'fixed') range = def.min + '..' + def.max + ' in steps of ' + def.resolution;
  else if (def.type === 'uint' || def.type === 'int') range = template.numbers[f * 4 + numberMinQ] + '..' + template.numbers[f * 4 + numberMaxQ];
  else if (def.type === 'timestamp') range = 'Unix epoch ms from 0';
  return shown + ' is out of range (' + range + ')';
}

/**
 * Copies a plain-object record into `into` (index = field), converting text to UTF-8 byte strings.
 * Returns null, or an error naming the field: missing, unknown, wrong type or out of range.
 */
export function recordToValues(template: Template, record: unknown, recordIndex: number, into: WireValue[]): RecordError | null {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return describe(recordIndex, '', wireErrorType, 'a record must be a JSON object');
  }
  const object = record as Record<string, unknown>;
  for (const key in object) {
    let known = false;
    for (let f = 0; f < template.definition.fields.length; f++) if (template.definition.fields[f].name === key) known = true;
    if (!known) return describe(recordIndex, key, wireErrorType, 'not a field of template ' + template.name);
  }
  for (let f = 0; f < template.definition.fields.length; f++) {
    const field = template.definition.fields[f];
    let value = object[field.name];
    if (template.kinds[f] === fieldString && typeof value === 'string') value = utf8ToByteString(value);
    into[f] = value as WireValue;
  }
  return null;
}

/** A record object from decoded values (text decoded from UTF-8). */
export function valuesToRecord(template: Template, values: WireValue[]): Record<string, WireValue> {
  const record: Record<string, WireValue> = {};
  for (let f = 0; f < template.definition.fields.length; f++) {
    const field = template.definition.fields[f];
    const value = values[f];
    record[field.name] = template.kinds[f] === fieldString ? byteStringToUtf8(value as string) : value;
  }
  return record;
}

export interface EncodeFramesOptions {
  /** Largest frame to produce, CRC included (default and maximum wireFrameBytesMax). */
  frameBytesMax?: number;
  /** Sequence number of the first record; later frames continue from it. */
  firstSeq?: number;
  crc?: Crc32;
}

export type EncodeFramesResult = { ok: true; frames: Uint8Array[] } | { ok: false; error: RecordError };

/**
 * Encodes records into as few frames as fit (each up to frameBytesMax and
 * wireRecordsPerFrameMax records). Any bad record stops it with an error naming record and field.
 */
export function encodeRecordsToFrames(template: Template, records: unknown[], options?: EncodeFramesOptions): EncodeFramesResult {
  const frameBytes = options !== undefined && options.frameBytesMax !== undefined ? Math.min(options.frameBytesMax, wireFrameBytesMax) : wireFrameBytesMax;
  let seq = options !== undefined && options.firstSeq !== undefined ? options.firstSeq : 0;
  const encoder = createFrameEncoder(options !== undefined ? options.crc : undefined);
  const buffer = new Uint8Array(wireFrameBytesMax);
  const values: WireValue[] = [];
  for (let i = 0; i < wireTemplateFieldsMax; i++) values.push(0);
  const frames: Uint8Array[] = [];
  let open = false;
  for (let r = 0; r < records.length; r++) {
    const shapeError = recordToValues(template, records[r], r, values);
    if (shapeError !== null) return { ok: false, error: shapeError };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!open) {
        if (frameEncodeBegin(encoder, template, buffer, 0, frameBytes, seq) !== wireOk) {
          return { ok: false, error: describe(r, '', wireErrorFull, 'frameBytesMax ' + frameBytes + ' is too small for a frame header') };
        }
        open = true;
      }
      const code = frameEncodeAppend(encoder, values);
      if (code === wireOk) break;
      if (code !== wireErrorFull) {
        const f = encoder.errorField;
        return { ok: false, error: describe(r, template.definition.fields[f].name, code, valueDetail(template, f, (records[r] as Record<string, unknown>)[template.definition.fields[f].name], code)) };
      }
      if (encoder.count === 0 || attempt === 1) {
        return { ok: false, error: describe(r, '', wireErrorFull, 'the record does not fit in a frame of ' + frameBytes + ' bytes') };
      }
      const length = frameEncodeFinish(encoder);
      frames.push(buffer.slice(0, length));
      seq += encoder.count;
      open = false;
    }
  }
  if (open) {
    const length = frameEncodeFinish(encoder);
    frames.push(buffer.slice(0, length));
  }
  return { ok: true, frames: frames };
}

export type DecodedFrame =
  | { ok: true; kind: 'batch'; template: Template; firstSeq: number; records: Record<string, WireValue>[] }
  | { ok: true; kind: 'untemplated'; template: null; firstSeq: number; records: unknown[] }
  | { ok: false; code: number; message: string; record: number; hash: number };

function textsToUtf8(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return byteStringToUtf8(value);
  if (typeof value !== 'object' || value === null || depth > 16) return value;
  if (Array.isArray(value)) return value.map((item) => textsToUtf8(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key in value as Record<string, unknown>) {
    const name = byteStringToUtf8(key);
    const item = textsToUtf8((value as Record<string, unknown>)[key], depth + 1);
    if (name === '__proto__') Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
    else out[name] = item;
  }
  return out;
}

function textsFromUtf8(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return utf8ToByteString(value);
  if (typeof value !== 'object' || value === null || depth > 16) return value;
  if (Array.isArray(value)) return value.map((item) => textsFromUtf8(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const key in value as Record<string, unknown>) {
    const item = textsFromUtf8((value as Record<string, unknown>)[key], depth + 1);
    const name = utf8ToByteString(key);
    if (name === '__proto__') Object.defineProperty(out, name, { value: item, enumerable: true, writable: true, configurable: true });
    else out[name] = item;
  }
  return out;
}

/**
 * Decodes one frame of either kind. Never throws on bad bytes: a failure comes back as a wire
 * code with a message (an unknown template names its hash).
 */
export function decodeFrame(bytes: Uint8Array, registry: TemplateRegistry, crc?: Crc32): DecodedFrame {
  if (bytes.length > 0 && bytes[0] === frameTypeUntemplated) {
    const frame = untemplatedDecode(bytes, 0, bytes.length, crc);
    if (frame.code !== wireOk) return { ok: false, code: frame.code, message: 'untemplated frame: ' + wireErrorName(frame.code), record: -1, hash: 0 };
    return { ok: true, kind: 'untemplated', template: null, firstSeq: frame.firstSeq, records: frame.records.map((r) => textsToUtf8(r, 0)) };
  }
  if (bytes.length > 0 && bytes[0] !== frameTypeBatch) {
    return { ok: false, code: wireErrorFrameType, message: 'unknown frame type ' + bytes[0], record: -1, hash: 0 };
  }
  const decoder = createFrameDecoder(registry, crc);
  const begin = frameDecodeBegin(decoder, bytes, 0, bytes.length);
  if (begin !== wireOk) {
    const message = begin === wireErrorUnknownTemplate ? 'unknown template hash ' + templateHashHex(decoder.hash) + ': the device and the cloud do not share this template' : wireErrorName(begin);
    return { ok: false, code: begin, message: message, record: -1, hash: decoder.hash };
  }
  const template = decoder.template as Template;
  const values: WireValue[] = [];
  const records: Record<string, WireValue>[] = [];
  for (let r = 0; r < decoder.count; r++) {
    const code = frameDecodeNext(decoder, values);
    if (code !== wireOk) return { ok: false, code: code, message: 'record ' + (r + 1) + ': ' + wireErrorName(code), record: r, hash: decoder.hash };
    records.push(valuesToRecord(template, values));
  }
  return { ok: true, kind: 'batch', template: template, firstSeq: decoder.firstSeq, records: records };
}

/** Encodes JSON-like records (text as Unicode) into untemplated frames [WIRE-50]. */
export function encodeUntemplatedFrames(records: unknown[], options?: EncodeFramesOptions): EncodeFramesResult {
  const frameBytes = options !== undefined && options.frameBytesMax !== undefined ? Math.min(options.frameBytesMax, wireFrameBytesMax) : wireFrameBytesMax;
  let seq = options !== undefined && options.firstSeq !== undefined ? options.firstSeq : 0;
  const encoder = createUntemplatedEncoder(options !== undefined ? options.crc : undefined);
  const buffer = new Uint8Array(wireFrameBytesMax);
  const frames: Uint8Array[] = [];
  let open = false;
  for (let r = 0; r < records.length; r++) {
    const value = textsFromUtf8(records[r], 0);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!open) {
        if (untemplatedEncodeBegin(encoder, buffer, 0, frameBytes, seq) !== wireOk) {
          return { ok: false, error: describe(r, '', wireErrorFull, 'frameBytesMax ' + frameBytes + ' is too small for a frame header') };
        }
        open = true;
      }
      const code = untemplatedEncodeAppend(encoder, value);
      if (code === wireOk) break;
      if (code !== wireErrorFull) return { ok: false, error: describe(r, '', code, wireErrorName(code)) };
      if (encoder.count === 0 || attempt === 1) return { ok: false, error: describe(r, '', wireErrorFull, 'the record does not fit in a frame of ' + frameBytes + ' bytes') };
      const count = encoder.count;
      const length = untemplatedEncodeFinish(encoder);
      frames.push(buffer.slice(0, length));
      seq += count;
      open = false;
    }
  }
  if (open) frames.push(buffer.slice(0, untemplatedEncodeFinish(encoder)));
  return { ok: true, frames: frames };
}

/** [WIRE-60] A frame file: each frame preceded by its length as a varint. */
export function writeFrameFile(frames: Uint8Array[]): Uint8Array {
  let total = 0;
  for (let i = 0; i < frames.length; i++) total += frames[i].length + 10;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < frames.length; i++) {
    at = writeVarint(out, at, out.length, frames[i].length);
    out.set(frames[i], at);
    at += frames[i].length;
  }
  return out.slice(0, at);
}

/** Splits a frame file; a bad length comes back as a wire code with the frame's index. */
export function readFrameFile(bytes: Uint8Array): { code: number; frames: Uint8Array[]; frame: number } {
  const frames: Uint8Array[] = [];
  const cursor = { position: 0 };
  while (cursor.position < bytes.length) {
    const length = readVarint(bytes, cursor, bytes.length);
    if (length < 0) return { code: length, frames: frames, frame: frames.length };
    if (length > wireFrameBytesMax) return { code: wireErrorRange, frames: frames, frame: frames.length };
    if (cursor.position + length > bytes.length) return { code: wireErrorTruncated, frames: frames, frame: frames.length };
    frames.push(bytes.subarray(cursor.position, cursor.position + length));
    cursor.position += length;
  }
  return { code: wireOk, frames: frames, frame: -1 };
}
