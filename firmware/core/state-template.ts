// A state template: the typed keys of a device's state (name, type, owner, size). The state store
// numbers keys by their index in the template and checks every value against its field.
// TODO(merge): align with the protocol's template types in firmware/protocol/ when they land.
import { stateStoreKeysMax, stateStoreValueBytesMax } from '../protocol/limits.ts';

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
