// Validation of template definitions [WIRE-20]: every rule a template file must follow, with a
// message naming the template and field. Kept apart from template.ts so the device bundle, which
// only compiles the templates the tests have already checked, does not carry these messages.
import {
  wireFieldNameLengthMax,
  wireStringBytesMax,
  wireTemplateFieldsMax,
  wireTemplateIdMax,
  wireTemplatesMax,
} from './limits.ts';
import { canonicalNumber, type FieldDefinition, type Template, type TemplateDefinition } from './template.ts';

function isName(name: unknown): boolean {
  if (typeof name !== 'string' || name.length < 1 || name.length > wireFieldNameLengthMax) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
    if (!ok) return false;
  }
  return true;
}

function isTemplateName(name: unknown): boolean {
  if (typeof name !== 'string' || name.length < 1 || name.length > wireFieldNameLengthMax) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 122) || c === 45)) return false;
  }
  return true;
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && value === Math.floor(value) && Math.abs(value) < 9007199254740992;
}

const boundMax = 281474976710656; // 2^48: deltas of two bounds stay exact in a double

function representable(value: number): boolean {
  try {
    canonicalNumber(value);
    return true;
  } catch {
    return false;
  }
}

function checkField(def: FieldDefinition): string | null {
  if (!isName(def.name)) return 'name must be 1 to ' + wireFieldNameLengthMax + ' characters of A-Z a-z 0-9 _';
  const t = def.type;
  if (t === 'uint' || t === 'int') {
    const min = def.min !== undefined ? def.min : t === 'uint' ? 0 : -2147483648;
    const max = def.max !== undefined ? def.max : t === 'uint' ? 4294967295 : 2147483647;
    if (!isWhole(min) || !isWhole(max) || min > max) return 'min and max must be whole numbers with min <= max';
    if (t === 'uint' && min < 0) return 'a uint min must be >= 0';
    if (min < -boundMax || max > boundMax) return 'bounds must lie within +-2^48';
    return null;
  }
  if (t === 'fixed') {
    const res = def.resolution;
    if (typeof res !== 'number' || !(res > 0) || !representable(res)) return 'a fixed field needs a resolution > 0 with at most 15 decimals';
    if (typeof def.min !== 'number' || typeof def.max !== 'number' || !(def.min <= def.max)) return 'a fixed field needs numbers min <= max';
    if (!representable(def.min) || !representable(def.max)) return 'min and max need at most 15 decimals';
    if (Math.abs(def.min / res) > boundMax || Math.abs(def.max / res) > boundMax) return 'min/resolution and max/resolution must lie within +-2^48';
    return null;
  }
  if (t === 'enum') {
    const labels = def.values;
    if (!Array.isArray(labels) || labels.length < 1 || labels.length > 256) return 'an enum needs 1 to 256 values';
    for (let i = 0; i < labels.length; i++) {
      if (!isName(labels[i])) return 'enum value ' + i + ' must be 1 to ' + wireFieldNameLengthMax + ' characters of A-Z a-z 0-9 _';
      for (let j = 0; j < i; j++) if (labels[j] === labels[i]) return 'enum value ' + labels[i] + ' repeats';
    }
    return null;
  }
  if (t === 'string') {
    if (!isWhole(def.maxLength) || def.maxLength < 1 || def.maxLength > wireStringBytesMax) return 'a string needs maxLength 1..' + wireStringBytesMax;
    return null;
  }
  if (t === 'timestamp') {
    const res = def.resolutionMs !== undefined ? def.resolutionMs : 1000;
    if (!isWhole(res) || res < 1) return 'timestamp resolutionMs must be a whole number >= 1';
    return null;
  }
  if (t === 'bool' || t === 'f32') return null;
  return 'unknown type ' + String(t) + ' (bool, uint, int, fixed, f32, enum, string, timestamp)';
}

/** Null when `def` is a valid template, else one line naming the template and field. */
export function checkTemplateDefinition(def: TemplateDefinition): string | null {
  const name = typeof def.name === 'string' ? def.name : '?';
  if (!isTemplateName(def.name)) return 'template ' + name + ': name must be 1 to ' + wireFieldNameLengthMax + ' characters of a-z 0-9 -';
  if (!isWhole(def.id) || def.id < 1 || def.id > wireTemplateIdMax) return 'template ' + name + ': id must be 1..' + wireTemplateIdMax;
  if (!isWhole(def.version) || def.version < 1 || def.version > 65535) return 'template ' + name + ': version must be 1..65535';
  if (!Array.isArray(def.fields) || def.fields.length < 1 || def.fields.length > wireTemplateFieldsMax) {
    return 'template ' + name + ': needs 1 to ' + wireTemplateFieldsMax + ' fields';
  }
  for (let i = 0; i < def.fields.length; i++) {
    const field = def.fields[i];
    const problem = checkField(field);
    if (problem !== null) return 'template ' + name + ' field ' + String(field.name) + ': ' + problem;
    for (let j = 0; j < i; j++) if (def.fields[j].name === field.name) return 'template ' + name + ' field ' + field.name + ': name repeats';
  }
  return null;
}

/** Null when every template is valid and ids, names+versions and hashes are unique. */
export function checkTemplates(templates: Template[]): string | null {
  if (templates.length > wireTemplatesMax) return 'at most ' + wireTemplatesMax + ' templates';
  for (let i = 0; i < templates.length; i++) {
    const problem = checkTemplateDefinition(templates[i].definition);
    if (problem !== null) return problem;
    for (let j = 0; j < i; j++) {
      const a = templates[j];
      const b = templates[i];
      if (a.hash === b.hash) return 'templates ' + a.name + ' and ' + b.name + ' have the same hash';
      if (a.name === b.name && a.version === b.version) return 'template ' + b.name + ' version ' + b.version + ' appears twice';
      if (a.id === b.id && a.name !== b.name) return 'templates ' + a.name + ' and ' + b.name + ' share id ' + a.id;
    }
  }
  return null;
}
