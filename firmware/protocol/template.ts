// Templates [WIRE-20..WIRE-27]: a record's fields declared once (one file per template under
// ./templates/), compiled at start-up into the tables the encoder and decoder read. Each template
// has an id, a version and a content hash (CRC-32 of its canonical description); frames carry the
// hash so the cloud never decodes with the wrong template. Firmware-grade: runs on Espruino.
import { crc32OfByteString } from './crc32.ts';
import { wireTimestampMsMax } from './limits.ts';
import { wireErrorRange, wireErrorType, wireOk } from './wire-errors.ts';

/** [WIRE-21] Field kinds, as numbers: they also appear in the canonical description. */
export const fieldBool = 1;
export const fieldUint = 2;
export const fieldInt = 3;
export const fieldFixed = 4;
export const fieldF32 = 5;
export const fieldEnum = 6;
export const fieldString = 7;
export const fieldTimestamp = 8;

export type FieldTypeName = 'bool' | 'uint' | 'int' | 'fixed' | 'f32' | 'enum' | 'string' | 'timestamp';

/** One field as a template file declares it. */
export interface FieldDefinition {
  /** 1 to wireFieldNameLengthMax characters of [A-Za-z0-9_]. */
  name: string;
  type: FieldTypeName;
  /** uint/int: inclusive bounds (defaults 0..2^32-1 and -2^31..2^31-1). fixed: required. */
  min?: number;
  max?: number;
  /** fixed: the step, e.g. 0.1 (record values are rounded to it, then range-checked). */
  resolution?: number;
  /** timestamp: the step in milliseconds (1000 = whole seconds). Values are Unix epoch ms. */
  resolutionMs?: number;
  /** enum: the labels, index 0 first. */
  values?: string[];
  /** string: the longest value in bytes. */
  maxLength?: number;
  /** Free text for people (schemas); not part of the hash. */
  description?: string;
  /** Display unit (schemas); not part of the hash. */
  unit?: string;
}

export interface TemplateDefinition {
  /** kebab-case name, unique; also the file name under templates/. */
  name: string;
  /** 1..wireTemplateIdMax, unique per product; announced with the version and hash. */
  id: number;
  /** Bumped on every change of fields; the hash changes anyway. */
  version: number;
  fields: FieldDefinition[];
  description?: string;
}

/** A compiled field: numbers the codec reads per event, worked out once. */
export interface Field {
  name: string;
  kind: number;
  typeName: FieldTypeName;
  /** Quantized bounds: every integer-coded kind is range-checked as an integer in [minQ, maxQ]. */
  minQ: number;
  maxQ: number;
  /** Quantize: q = floor(value * multiplier + 0.5) when divider is 0, else floor(value / divider + 0.5). */
  multiplier: number;
  divider: number;
  /** enum labels (kind fieldEnum), else empty. */
  labels: string[];
  maxLength: number;
  definition: FieldDefinition;
}

export interface Template {
  name: string;
  id: number;
  version: number;
  /** [WIRE-22] CRC-32 of `canonical`, unsigned. */
  hash: number;
  canonical: string;
  fields: Field[];
  /** Index of the first timestamp field (its value becomes the frame's base time), or -1. */
  timestampField: number;
  definition: TemplateDefinition;
}

/** The value of one field in a record: number (uint, int, fixed, f32, timestamp), boolean, string (enum label, string). */
export type WireValue = number | boolean | string;

/** Integer bounds of uint and int fields when a template declares none. */
export const uintDefaultMax = 4294967295;
export const intDefaultMin = -2147483648;
export const intDefaultMax = 2147483647;

function quantizeFixed(field: Field, value: number): number {
  return field.divider === 0 ? Math.floor(value * field.multiplier + 0.5) : Math.floor(value / field.divider + 0.5);
}

/** Fixed-point scaling: multiply by 1/resolution when that is whole (0.1, 0.01, 0.5), else divide. */
function fixedScale(field: Field, resolution: number): void {
  // 21.3 * 10 is exact where 21.3 / 0.1 is not, and decoding divides by 10 so 213 comes back as
  // 21.3 exactly.
  const inverse = Math.floor(1 / resolution + 0.5);
  if (Math.abs(inverse * resolution - 1) < 1e-12) {
    field.multiplier = inverse;
    field.divider = 0;
  } else {
    field.multiplier = 0;
    field.divider = resolution;
  }
}

// Compiling trusts the definition: template-check.ts validates every one (tests run it over all
// template files, the cloud and the CLI at start-up), which keeps its messages out of the bundle.
function compileField(def: FieldDefinition): Field {
  const field: Field = {
    name: def.name,
    kind: 0,
    typeName: def.type,
    minQ: 0,
    maxQ: 0,
    multiplier: 1,
    divider: 0,
    labels: [],
    maxLength: 0,
    definition: def,
  };
  const t = def.type;
  if (t === 'bool') {
    field.kind = fieldBool;
    field.maxQ = 1;
  } else if (t === 'uint') {
    field.kind = fieldUint;
    field.minQ = def.min !== undefined ? def.min : 0;
    field.maxQ = def.max !== undefined ? def.max : uintDefaultMax;
  } else if (t === 'int') {
    field.kind = fieldInt;
    field.minQ = def.min !== undefined ? def.min : intDefaultMin;
    field.maxQ = def.max !== undefined ? def.max : intDefaultMax;
  } else if (t === 'fixed') {
    field.kind = fieldFixed;
    fixedScale(field, def.resolution as number);
    field.minQ = quantizeFixed(field, def.min as number);
    field.maxQ = quantizeFixed(field, def.max as number);
  } else if (t === 'f32') {
    field.kind = fieldF32;
  } else if (t === 'enum') {
    field.kind = fieldEnum;
    field.labels = def.values as string[];
    field.maxQ = field.labels.length - 1;
  } else if (t === 'string') {
    field.kind = fieldString;
    field.maxLength = def.maxLength as number;
    field.maxQ = field.maxLength;
  } else if (t === 'timestamp') {
    field.kind = fieldTimestamp;
    field.multiplier = 0;
    field.divider = def.resolutionMs !== undefined ? def.resolutionMs : 1000;
    field.maxQ = Math.floor(wireTimestampMsMax / field.divider);
  }
  return field;
}

/**
 * [WIRE-22] A number in the canonical description, printed the same on Espruino and Node: an
 * integer as digits, anything else as `<mantissa>e-<decimals>`, because the two engines print
 * fractions differently (Espruino keeps about 12 significant digits).
 */
export function canonicalNumber(value: number): string {
  if (value === Math.floor(value)) return String(value);
  let scale = 1;
  for (let d = 1; d <= 15; d++) {
    scale *= 10;
    const mantissa = Math.floor(value * scale + 0.5);
    if (mantissa / scale === value) return String(mantissa) + 'e-' + d;
  }
  throw new Error('template number ' + value);
}

/** The field's description in the hash: everything that changes bytes on the wire. */
function canonicalField(f: Field): string {
  let text = f.name + ':' + f.typeName;
  const k = f.kind;
  if (k === fieldUint || k === fieldInt) text += ':' + canonicalNumber(f.minQ) + ':' + canonicalNumber(f.maxQ);
  else if (k === fieldFixed) {
    const def = f.definition;
    text += ':' + canonicalNumber(def.resolution as number) + ':' + canonicalNumber(def.min as number) + ':' + canonicalNumber(def.max as number);
  } else if (k === fieldEnum) text += ':' + f.labels.join(',');
  else if (k === fieldString) text += ':' + f.maxLength;
  else if (k === fieldTimestamp) text += ':' + f.divider;
  return text;
}

/**
 * Compiles a template definition (at start-up, once per template). It does not validate:
 * checkTemplateDefinition (template-check.ts) does, in the tests for every template file and in
 * the cloud and CLI before use.
 */
export function defineTemplate(def: TemplateDefinition): Template {
  const fields: Field[] = [];
  let timestampField = -1;
  let canonical = 'tandem-template/1;' + def.name + ';' + def.id + ';' + def.version;
  for (let i = 0; i < def.fields.length; i++) {
    const f = compileField(def.fields[i]);
    if (f.kind === fieldTimestamp && timestampField < 0) timestampField = i;
    fields.push(f);
    canonical += ';' + canonicalField(f);
  }
  return {
    name: def.name,
    id: def.id,
    version: def.version,
    hash: crc32OfByteString(canonical),
    canonical: canonical,
    fields: fields,
    timestampField: timestampField,
    definition: def,
  };
}

/** The hash as 8 lowercase hex digits, as logs and the CLI show it. */
export function templateHashHex(hash: number): string {
  let text = (hash >>> 0).toString(16);
  while (text.length < 8) text = '0' + text;
  return text;
}

/** [WIRE-23] A set of templates the decoder may use, found by hash (a short list, searched). */
export interface TemplateRegistry {
  templates: Template[];
}

/** A registry of `templates`; two with the same hash, or name and version, is a bug: it throws. */
export function createTemplateRegistry(templates: Template[]): TemplateRegistry {
  const list: Template[] = [];
  for (let i = 0; i < templates.length; i++) {
    for (let j = 0; j < list.length; j++) {
      const same = list[j].hash === templates[i].hash || (list[j].name === templates[i].name && list[j].version === templates[i].version);
      if (same) throw new Error('template registered twice: ' + templates[i].name);
    }
    list.push(templates[i]);
  }
  return { templates: list };
}

export function findTemplateByHash(registry: TemplateRegistry, hash: number): Template | null {
  const list = registry.templates;
  for (let i = 0; i < list.length; i++) if (list[i].hash === hash) return list[i];
  return null;
}

export function findTemplateByName(registry: TemplateRegistry, name: string): Template | null {
  let best: Template | null = null;
  const list = registry.templates;
  for (let i = 0; i < list.length; i++) {
    if (list[i].name === name && (best === null || list[i].version > best.version)) best = list[i];
  }
  return best;
}

export function fieldIndex(template: Template, name: string): number {
  for (let i = 0; i < template.fields.length; i++) if (template.fields[i].name === name) return i;
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Values <-> quantized integers [WIRE-24]. Shared by the record, frame and state codecs.


const f32View = new DataView(new ArrayBuffer(4), 0, 4);

/** The f32 bit pattern of `value` (unsigned 32-bit). */
export function f32Bits(value: number): number {
  f32View.setFloat32(0, value, true);
  return f32View.getUint32(0, true);
}

export function f32FromBits(bits: number): number {
  f32View.setUint32(0, bits, true);
  return f32View.getFloat32(0, true);
}

const f32Largest = 3.4028234663852886e38;

/**
 * [WIRE-24] Checks `value` against `field`: wireOk, wireErrorType (wrong type, missing, NaN, not a
 * whole number where one is needed, a char code above 255) or wireErrorRange (outside min/max
 * after rounding to the resolution, unknown enum label, string too long). Nothing is clamped.
 */
export function checkValue(field: Field, value: WireValue | undefined | null): number {
  const k = field.kind;
  // The numeric kinds first: they are most fields of most templates, and Espruino pays for
  // every branch it has to read past.
  if (k === fieldUint || k === fieldInt || k === fieldFixed || k === fieldTimestamp) {
    if (typeof value !== 'number' || value !== value) return wireErrorType;
    // Infinity passes this test and fails the range check below.
    if (k !== fieldFixed && k !== fieldTimestamp && value !== Math.floor(value)) return wireErrorType;
    const q = quantize(field, value);
    return q >= field.minQ && q <= field.maxQ ? wireOk : wireErrorRange;
  }
  if (k === fieldBool) return typeof value === 'boolean' ? wireOk : wireErrorType;
  if (k === fieldEnum) {
    if (typeof value === 'string') {
      for (let i = 0; i < field.labels.length; i++) if (field.labels[i] === value) return wireOk;
      return wireErrorRange;
    }
    if (typeof value !== 'number' || value !== Math.floor(value)) return wireErrorType;
    return value >= 0 && value < field.labels.length ? wireOk : wireErrorRange;
  }
  if (k === fieldString) {
    if (typeof value !== 'string') return wireErrorType;
    for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 255) return wireErrorType;
    return value.length <= field.maxLength ? wireOk : wireErrorRange;
  }
  // f32
  if (typeof value !== 'number' || value !== value || value === Infinity || value === -Infinity) return wireErrorType;
  return value >= -f32Largest && value <= f32Largest ? wireOk : wireErrorRange;
}

/** The integer a checked value is coded as (bool 0/1, enum index, fixed steps, timestamp steps). */
export function quantize(field: Field, value: WireValue): number {
  const k = field.kind;
  if (k === fieldBool) return value === true ? 1 : 0;
  if (k === fieldEnum) {
    if (typeof value === 'number') return value;
    for (let i = 0; i < field.labels.length; i++) if (field.labels[i] === value) return i;
    return -1;
  }
  if (k === fieldFixed) return quantizeFixed(field, value as number);
  if (k === fieldTimestamp) return Math.floor((value as number) / field.divider + 0.5);
  return value as number;
}

/** The value a quantized integer stands for (inverse of quantize, exact to the resolution). */
export function dequantize(field: Field, q: number): WireValue {
  const k = field.kind;
  if (k === fieldBool) return q === 1;
  if (k === fieldEnum) return field.labels[q];
  if (k === fieldFixed) return field.divider === 0 ? q / field.multiplier : q * field.divider;
  if (k === fieldTimestamp) return q * field.divider;
  return q;
}
