// A state template: the typed keys of a device's state (name, type, owner, size). The state store
// numbers keys by their index in the template and checks every value against its field; device and
// cloud share it (the cloud decodes reported values and encodes desired ones with it), so it lives
// in the protocol. Keys whose name starts with '_' are the device's own and never replicated.
import { stateStoreKeysMax, stateStoreValueBytesMax } from './limits.ts';

/** A boolean, one byte (0 or 1) on flash. */
export const stateTypeBool = 1;
/** A signed 32-bit integer, four bytes little-endian on flash. */
export const stateTypeInt = 2;
/** A fixed-point number: stored as a signed 32-bit integer of value * 10^scale. */
export const stateTypeFixed = 3;
/** A short byte string (char codes 0..255) of at most maxLength bytes. */
export const stateTypeString = 4;
/** A small record as opaque bytes (encoded by the caller) of at most maxLength bytes. */
export const stateTypeBytes = 5;

/** The device decides the key's value; the cloud only mirrors it. */
export const stateOwnerDevice = 0;
/** The cloud decides the key's value (desired state); the device applies it. */
export const stateOwnerCloud = 1;

export interface StateField {
  name: string;
  type: number;
  owner: number;
  /** Bytes on flash: fixed for bool/int/fixed, the maximum for string/bytes. */
  maxLength: number;
  /** Decimal places of a fixed-point field (0 for the others). */
  scale: number;
}

export interface StateTemplate {
  fields: StateField[];
}

export function boolField(name: string, owner: number): StateField {
  return { name: name, type: stateTypeBool, owner: owner, maxLength: 1, scale: 0 };
}

export function intField(name: string, owner: number): StateField {
  return { name: name, type: stateTypeInt, owner: owner, maxLength: 4, scale: 0 };
}

export function fixedField(name: string, owner: number, decimals: number): StateField {
  return { name: name, type: stateTypeFixed, owner: owner, maxLength: 4, scale: decimals };
}

export function stringField(name: string, owner: number, maxLength: number): StateField {
  return { name: name, type: stateTypeString, owner: owner, maxLength: maxLength, scale: 0 };
}

export function bytesField(name: string, owner: number, maxLength: number): StateField {
  return { name: name, type: stateTypeBytes, owner: owner, maxLength: maxLength, scale: 0 };
}

/** Whether a value of `length` bytes fits `field`: exact for fixed-size types, bounded otherwise. */
export function fieldAcceptsLength(field: StateField, length: number): boolean {
  if (field.type === stateTypeString || field.type === stateTypeBytes) return length >= 0 && length <= field.maxLength;
  return length === field.maxLength;
}

/** The key id (index) of the field called `name`, or -1. */
export function keyIdOf(template: StateTemplate, name: string): number {
  for (let i = 0; i < template.fields.length; i++) {
    if (template.fields[i].name === name) return i;
  }
  return -1;
}

/** Throws on a template that breaks the limits: a template is code, so a bad one is a bug. */
export function checkTemplate(template: StateTemplate): void {
  const fields = template.fields;
  if (fields.length < 1 || fields.length > stateStoreKeysMax) throw new Error('state template: 1..' + stateStoreKeysMax + ' keys');
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const sized = field.type === stateTypeString || field.type === stateTypeBytes;
    if (field.type < stateTypeBool || field.type > stateTypeBytes) throw new Error('state template: bad type of ' + field.name);
    if (sized && (field.maxLength < 0 || field.maxLength > stateStoreValueBytesMax)) throw new Error('state template: ' + field.name + ' too long');
    if (!sized && field.maxLength !== (field.type === stateTypeBool ? 1 : 4)) throw new Error('state template: bad size of ' + field.name);
    if (field.owner !== stateOwnerDevice && field.owner !== stateOwnerCloud) throw new Error('state template: bad owner of ' + field.name);
    if (keyIdOf(template, field.name) !== i) throw new Error('state template: duplicate key ' + field.name);
  }
}

/**
 * [SYNC-7] The state template's content hash: CRC-32 of its canonical text (name:type:owner:
 * maxLength:scale per key, in order). The device announces it in HELLO; the cloud decodes state
 * values only with the template of that hash.
 */
export function stateTemplateHash(template: StateTemplate, crc: (text: string) => number): number {
  let text = 'state1';
  for (let i = 0; i < template.fields.length; i++) {
    const f = template.fields[i];
    text += '|' + f.name + ':' + f.type + ':' + f.owner + ':' + f.maxLength + ':' + f.scale;
  }
  return crc(text) >>> 0;
}

/**
 * [SYNC-8] A state value as JSON, from the bytes the store keeps (bool: 1 byte; int and fixed:
 * signed 32-bit little-endian, fixed divided by 10^scale; string: bytes; bytes: hex). Returns
 * undefined for bytes that do not fit the field. Cloud side: allocates.
 */
export function stateValueToJson(field: StateField, bytes: Uint8Array, offset: number, length: number): unknown {
  if (!fieldAcceptsLength(field, length)) return undefined;
  if (field.type === stateTypeBool) return bytes[offset] !== 0;
  if (field.type === stateTypeInt || field.type === stateTypeFixed) {
    const raw = bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24);
    return field.type === stateTypeInt ? raw : raw / Math.pow(10, field.scale);
  }
  let text = '';
  for (let i = 0; i < length; i++) {
    const b = bytes[offset + i];
    text += field.type === stateTypeString ? String.fromCharCode(b) : (b < 16 ? '0' : '') + b.toString(16);
  }
  return text;
}

/**
 * [SYNC-8] The bytes of a JSON state value for `field`, or a string saying why it does not fit
 * (the HTTP API turns that into a 400). Cloud side: allocates.
 */
export function stateValueFromJson(field: StateField, value: unknown): Uint8Array | string {
  if (field.type === stateTypeBool) {
    if (typeof value !== 'boolean') return field.name + ' must be true or false';
    return new Uint8Array([value ? 1 : 0]);
  }
  if (field.type === stateTypeInt || field.type === stateTypeFixed) {
    if (typeof value !== 'number' || !isFinite(value)) return field.name + ' must be a number';
    const scaled = Math.round(value * Math.pow(10, field.scale));
    if (field.type === stateTypeInt && scaled !== value) return field.name + ' must be a whole number';
    if (scaled < -2147483648 || scaled > 2147483647) return field.name + ' is out of the 32-bit range';
    const out = new Uint8Array(4);
    out[0] = scaled & 0xff;
    out[1] = (scaled >> 8) & 0xff;
    out[2] = (scaled >> 16) & 0xff;
    out[3] = (scaled >> 24) & 0xff;
    return out;
  }
  if (typeof value !== 'string') return field.name + ' must be a string';
  if (field.type === stateTypeString) {
    if (value.length > field.maxLength) return field.name + ' is longer than ' + field.maxLength + ' bytes';
    const out = new Uint8Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c > 255) return field.name + ' must be a byte string (char codes 0..255)';
      out[i] = c;
    }
    return out;
  }
  if (value.length % 2 !== 0 || value.length / 2 > field.maxLength || !/^[0-9a-f]*$/.test(value)) {
    return field.name + ' must be hex of at most ' + field.maxLength + ' bytes';
  }
  const out = new Uint8Array(value.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(value.substr(i * 2, 2), 16);
  return out;
}
