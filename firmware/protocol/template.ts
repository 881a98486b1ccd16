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

/**
 * A compiled template. Per-field numbers live in typed arrays, not in an object per field: on
 * Espruino an object costs about two JsVars per property, a Float64Array about one per 14 bytes.
 * The codec reads only `kinds`, `numbers` and `definition`; `fields` (an object per field, for
 * the cloud, the CLI and tests) is built on first use, so a device that never asks never pays.
 */
export interface Template {
  name: string;
  id: number;
  version: number;
  /** [WIRE-22] CRC-32 of `canonical`, unsigned. */
  hash: number;
  canonical: string;
  /** Field objects, built from kinds, numbers and definition on first read and kept. */
  readonly fields: Field[];
  /** The cache behind `fields` (null until first read). */
  fieldList: Field[] | null;
  /** Field kinds (fieldBool ...), by field. */
  kinds: Uint8Array;
  /**
   * Four numbers per field at 4*f: the quantized bounds minQ and maxQ (every integer-coded kind
   * is range-checked as an integer in [minQ, maxQ]), then multiplier and divider: q is
   * floor(value * multiplier + 0.5) when divider is 0, else floor(value / divider + 0.5).
   */
  numbers: Float64Array;
  /** Index of the first timestamp field (its value becomes the frame's base time), or -1. */
  timestampField: number;
  definition: TemplateDefinition;
}

/** Offsets within a field's four numbers. */
export const numberMinQ = 0;
export const numberMaxQ = 1;
export const numberMultiplier = 2;
export const numberDivider = 3;

/** The value of one field in a record: number (uint, int, fixed, f32, timestamp), boolean, string (enum label, string). */
export type WireValue = number | boolean | string;

/** Integer bounds of uint and int fields when a template declares none. */
export const uintDefaultMax = 4294967295;
export const intDefaultMin = -2147483648;
export const intDefaultMax = 2147483647;

const kindNames: FieldTypeName[] = ['bool', 'bool', 'uint', 'int', 'fixed', 'f32', 'enum', 'string', 'timestamp'];

// Compiling trusts the definition: template-check.ts validates every one (tests run it over all
// template files, the cloud and the CLI at start-up), which keeps its messages out of the bundle.
function compileField(def: FieldDefinition, kinds: Uint8Array, numbers: Float64Array, f: number): void {
  const at = f * 4;
  const t = def.type;
  let kind = fieldBool;
  let minQ = 0;
  let maxQ = 0;
  let multiplier = 1;
  let divider = 0;
  if (t === 'bool') {
    maxQ = 1;
  } else if (t === 'uint') {
    kind = fieldUint;
    minQ = def.min !== undefined ? def.min : 0;
    maxQ = def.max !== undefined ? def.max : uintDefaultMax;
  } else if (t === 'int') {
    kind = fieldInt;
    minQ = def.min !== undefined ? def.min : intDefaultMin;
    maxQ = def.max !== undefined ? def.max : intDefaultMax;
  } else if (t === 'fixed') {
    kind = fieldFixed;
    // Multiply by 1/resolution when that is whole (0.1, 0.01, 0.5), else divide: 21.3 * 10 is
    // exact where 21.3 / 0.1 is not, and decoding divides by 10 so 213 comes back as 21.3.
    const resolution = def.resolution as number;
    const inverse = Math.floor(1 / resolution + 0.5);
    if (Math.abs(inverse * resolution - 1) < 1e-12) multiplier = inverse;
    else {
      multiplier = 0;
      divider = resolution;
    }
    minQ = divider === 0 ? Math.floor((def.min as number) * multiplier + 0.5) : Math.floor((def.min as number) / divider + 0.5);
    maxQ = divider === 0 ? Math.floor((def.max as number) * multiplier + 0.5) : Math.floor((def.max as number) / divider + 0.5);
  } else if (t === 'f32') {
    kind = fieldF32;
  } else if (t === 'enum') {
    kind = fieldEnum;
    maxQ = (def.values as string[]).length - 1;
  } else if (t === 'string') {
    kind = fieldString;
    maxQ = def.maxLength as number;
  } else if (t === 'timestamp') {
    kind = fieldTimestamp;
    multiplier = 0;
    divider = def.resolutionMs !== undefined ? def.resolutionMs : 1000;
    maxQ = Math.floor(wireTimestampMsMax / divider);
  }
  kinds[f] = kind;
  numbers[at + numberMinQ] = minQ;
  numbers[at + numberMaxQ] = maxQ;
  numbers[at + numberMultiplier] = multiplier;
  numbers[at + numberDivider] = divider;
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
function canonicalField(def: FieldDefinition, kind: number, numbers: Float64Array, f: number): string {
  let text = def.name + ':' + def.type;
  if (kind === fieldUint || kind === fieldInt) text += ':' + canonicalNumber(numbers[f * 4 + numberMinQ]) + ':' + canonicalNumber(numbers[f * 4 + numberMaxQ]);
  else if (kind === fieldFixed) text += ':' + canonicalNumber(def.resolution as number) + ':' + canonicalNumber(def.min as number) + ':' + canonicalNumber(def.max as number);
  else if (kind === fieldEnum) text += ':' + (def.values as string[]).join(',');
  else if (kind === fieldString) text += ':' + def.maxLength;
  else if (kind === fieldTimestamp) text += ':' + numbers[f * 4 + numberDivider];
  return text;
}

function templateFields(this: Template): Field[] {
  if (this.fieldList === null) {
    const list: Field[] = [];
    for (let f = 0; f < this.kinds.length; f++) list.push(fieldInfo(this, f));
    this.fieldList = list;
  }
  return this.fieldList;
}

/**
 * Compiles a template definition (at start-up, once per template). It does not validate:
 * checkTemplateDefinition (template-check.ts) does, in the tests for every template file and in
 * the cloud and CLI before use.
 */
export function defineTemplate(def: TemplateDefinition): Template {
  const count = def.fields.length;
  const kinds = new Uint8Array(count);
  const numbers = new Float64Array(count * 4);
  let timestampField = -1;
  let canonical = 'tandem-template/1;' + def.name + ';' + def.id + ';' + def.version;
  for (let f = 0; f < count; f++) {
    compileField(def.fields[f], kinds, numbers, f);
    if (kinds[f] === fieldTimestamp && timestampField < 0) timestampField = f;
    canonical += ';' + canonicalField(def.fields[f], kinds[f], numbers, f);
  }
  const template = {
    name: def.name,
    id: def.id,
    version: def.version,
    hash: crc32OfByteString(canonical),
    canonical: canonical,
    kinds: kinds,
    numbers: numbers,
    timestampField: timestampField,
    definition: def,
    fieldList: null,
  } as unknown as Template;
  // One getter function shared by all templates (a function per template would keep a copy of
  // its code in RAM on Espruino).
  // (Not enumerable in Node, the default; Espruino lists it anyway, which does no harm.)
  Object.defineProperty(template, 'fields', { get: templateFields });
  return template;
}

/** One field's compiled facts as an object: for the cloud, the CLI and tests (it allocates). */
export interface Field {
  name: string;
  kind: number;
  typeName: FieldTypeName;
  minQ: number;
  maxQ: number;
  multiplier: number;
  divider: number;
  /** enum labels, else empty. */
  labels: string[];
  /** string: the longest value in bytes, else 0. */
  maxLength: number;
  definition: FieldDefinition;
}

/** Field `f` of `template` as an object (new each call; `template.fields` keeps one each). */
export function fieldInfo(template: Pick<Template, 'kinds' | 'numbers' | 'definition'>, f: number): Field {
  const def = template.definition.fields[f];
  const at = f * 4;
  return {
    name: def.name,
    kind: template.kinds[f],
    typeName: kindNames[template.kinds[f]],
    minQ: template.numbers[at + numberMinQ],
    maxQ: template.numbers[at + numberMaxQ],
    multiplier: template.numbers[at + numberMultiplier],
    divider: template.numbers[at + numberDivider],
    labels: def.values !== undefined ? def.values : [],
    maxLength: def.maxLength !== undefined ? def.maxLength : 0,
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

/** The index of the field called `name`, or -1. */
export function fieldIndex(template: Template, name: string): number {
  const fields = template.definition.fields;
  for (let i = 0; i < fields.length; i++) if (fields[i].name === name) return i;
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
 * [WIRE-24] Checks `value` against field `f` of `template`: wireOk, wireErrorType (wrong type,
 * missing, NaN, not a whole number where one is needed, a char code above 255) or
 * wireErrorRange (outside min/max after rounding to the resolution, unknown enum label, string
 * too long). Nothing is clamped.
 */
export function checkValue(template: Template, f: number, value: WireValue | undefined | null): number {
  const k = template.kinds[f];
  // The numeric kinds first: they are most fields of most templates, and Espruino pays for
  // every branch it has to read past.
  if (k === fieldUint || k === fieldInt || k === fieldFixed || k === fieldTimestamp) {
    if (typeof value !== 'number' || value !== value) return wireErrorType;
    // Infinity passes this test and fails the range check below.
    if (k !== fieldFixed && k !== fieldTimestamp && value !== Math.floor(value)) return wireErrorType;
    const q = quantize(template, f, value);
    return q >= template.numbers[f * 4 + numberMinQ] && q <= template.numbers[f * 4 + numberMaxQ] ? wireOk : wireErrorRange;
  }
  if (k === fieldBool) return typeof value === 'boolean' ? wireOk : wireErrorType;
  if (k === fieldEnum) {
    const labels = template.definition.fields[f].values as string[];
    if (typeof value === 'string') {
      for (let i = 0; i < labels.length; i++) if (labels[i] === value) return wireOk;
      return wireErrorRange;
    }
    if (typeof value !== 'number' || value !== Math.floor(value)) return wireErrorType;
    return value >= 0 && value < labels.length ? wireOk : wireErrorRange;
  }
  if (k === fieldString) {
    if (typeof value !== 'string') return wireErrorType;
    for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 255) return wireErrorType;
    return value.length <= template.numbers[f * 4 + numberMaxQ] ? wireOk : wireErrorRange;
  }
  // f32
  if (typeof value !== 'number' || value !== value || value === Infinity || value === -Infinity) return wireErrorType;
  return value >= -f32Largest && value <= f32Largest ? wireOk : wireErrorRange;
}

/** The integer a checked value is coded as (bool 0/1, enum index, fixed steps, timestamp steps). */
export function quantize(template: Template, f: number, value: WireValue): number {
  const k = template.kinds[f];
  if (k === fieldFixed || k === fieldTimestamp) {
    const divider = template.numbers[f * 4 + numberDivider];
    return divider === 0 ? Math.floor((value as number) * template.numbers[f * 4 + numberMultiplier] + 0.5) : Math.floor((value as number) / divider + 0.5);
  }
  if (k === fieldBool) return value === true ? 1 : 0;
  if (k === fieldEnum) {
    if (typeof value === 'number') return value;
    const labels = template.definition.fields[f].values as string[];
    for (let i = 0; i < labels.length; i++) if (labels[i] === value) return i;
    return -1;
  }
  return value as number;
}

/** The value a quantized integer stands for (inverse of quantize, exact to the resolution). */
export function dequantize(template: Template, f: number, q: number): WireValue {
  const k = template.kinds[f];
  if (k === fieldFixed || k === fieldTimestamp) {
    const divider = template.numbers[f * 4 + numberDivider];
    return divider === 0 ? q / template.numbers[f * 4 + numberMultiplier] : q * divider;
  }
  if (k === fieldBool) return q === 1;
  if (k === fieldEnum) return (template.definition.fields[f].values as string[])[q];
  return q;
}
