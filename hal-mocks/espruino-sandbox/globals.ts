// The Espruino globals of the sandbox that need host code (E.*, console formatting, JsVar sizes),
// and the script that strips a fresh V8 context down to what Espruino 2v2x offers (PROFILE.md).
import { formatNumber } from './espruino-json.ts';

/** The constructors of the sandbox's own realm, so values handed to firmware carry its prototypes. */
export interface ContextRealm {
  Array: ArrayConstructor;
  ArrayBuffer: ArrayBufferConstructor;
  Uint8Array: Uint8ArrayConstructor;
  Error: ErrorConstructor;
  TypeError: TypeErrorConstructor;
  JSON: JSON;
  Object: ObjectConstructor;
}

/**
 * Runs first inside every sandbox context. It removes what Espruino lacks, so firmware that relies
 * on it fails in the sandbox as it would on a board, and mimics the quirks that can be mimicked
 * (split ignores its limit, JSON ignores reviver and replacer, fromCharCode takes at most 256).
 */
export const hideMissingBuiltinsScript = `(function () {
  var g = globalThis;
  function drop(object, names) {
    if (!object) return;
    for (var i = 0; i < names.length; i++) {
      try { delete object[names[i]]; } catch (e) {}
    }
  }
  drop(g, ['Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Symbol', 'Proxy',
    'Reflect', 'Intl', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'BigInt', 'BigInt64Array',
    'BigUint64Array', 'AggregateError', 'RangeError', 'EvalError', 'TextEncoder', 'TextDecoder',
    'Buffer', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'structuredClone', 'escape',
    'unescape', 'console', 'Iterator', 'URIError', 'encodeURI', 'decodeURI']);
  drop(Array, ['from', 'of', 'fromAsync']);
  drop(Array.prototype, ['reduceRight', 'lastIndexOf', 'flat', 'flatMap', 'at', 'findLast',
    'findLastIndex', 'keys', 'values', 'entries', 'copyWithin', 'toReversed', 'toSorted',
    'toSpliced', 'with']);
  var TypedArray = Object.getPrototypeOf(Uint8Array);
  drop(TypedArray, ['from', 'of']);
  drop(TypedArray.prototype, ['at', 'findLast', 'findLastIndex', 'lastIndexOf', 'reduceRight',
    'copyWithin', 'entries', 'keys', 'values', 'toReversed', 'toSorted', 'with']);
  // BYTES_PER_ELEMENT cannot be deleted (non-configurable) and is left in place: the build gate refuses it.
  drop(ArrayBuffer.prototype, ['slice', 'resize', 'transfer', 'transferToFixedLength']);
  drop(ArrayBuffer, ['isView']);
  drop(DataView.prototype, ['getBigInt64', 'getBigUint64', 'setBigInt64', 'setBigUint64']);
  drop(Number, ['isInteger', 'isFinite', 'isSafeInteger', 'isNaN', 'parseFloat', 'parseInt']);
  // MAX_SAFE_INTEGER, MIN_SAFE_INTEGER and EPSILON cannot be deleted: swap in a Number without them.
  var OriginalNumber = Number;
  var EspruinoNumber = function Number(value) {
    var number = arguments.length ? +value : 0;
    return new.target ? Object(number) : number;
  };
  EspruinoNumber.prototype = OriginalNumber.prototype;
  var kept = ['MAX_VALUE', 'MIN_VALUE', 'NaN', 'POSITIVE_INFINITY', 'NEGATIVE_INFINITY'];
  for (var k = 0; k < kept.length; k++) EspruinoNumber[kept[k]] = OriginalNumber[kept[k]];
  Object.defineProperty(OriginalNumber.prototype, 'constructor', { value: EspruinoNumber, writable: true, configurable: true });
  g.Number = EspruinoNumber;
  drop(Number.prototype, ['toPrecision', 'toExponential']);
  drop(Math, ['fround', 'imul', 'clz32', 'trunc', 'log2', 'log10', 'hypot', 'cbrt', 'expm1', 'log1p', 'sinh', 'cosh', 'tanh', 'asinh', 'acosh', 'atanh']);
  drop(String, ['fromCodePoint', 'raw']);
  drop(String.prototype, ['trimStart', 'trimEnd', 'trimLeft', 'trimRight', 'codePointAt',
    'matchAll', 'search', 'normalize', 'at', 'isWellFormed', 'toWellFormed', 'localeCompare']);
  drop(Date, ['UTC']);
  drop(Date.prototype, ['setUTCDate', 'setUTCFullYear', 'setUTCHours', 'setUTCMilliseconds',
    'setUTCMinutes', 'setUTCMonth', 'setUTCSeconds', 'toLocaleString', 'toLocaleDateString',
    'toLocaleTimeString']);
  drop(Object, ['freeze', 'seal', 'is', 'isFrozen', 'isSealed', 'getOwnPropertySymbols']);
  drop(Promise, ['race', 'allSettled', 'any', 'withResolvers', 'try']);
  drop(Promise.prototype, ['finally']);

  var split = String.prototype.split;
  String.prototype.split = function (separator) { return split.call(this, separator); };
  var parse = JSON.parse, stringify = JSON.stringify;
  JSON.parse = function (text) { return parse(text); };
  // Espruino escapes every character from 127 up as \\u00XX; V8 writes them as they are.
  JSON.stringify = function (value, replacer, space) {
    var text = stringify(value, undefined, space);
    return typeof text === 'string' ? text.replace(/[\\u007f-\\uffff]/g, function (c) {
      return '\\\\u' + ('000' + c.charCodeAt(0).toString(16).toUpperCase()).slice(-4);
    }) : text;
  };
  var fromCharCode = String.fromCharCode;
  String.fromCharCode = function () {
    if (arguments.length > 256) throw new Error('Too many arguments to String.fromCharCode (Espruino takes at most 256)');
    return fromCharCode.apply(String, arguments);
  };
  g.global = g;
  // Espruino's own error class for interpreter failures.
  g.InternalError = function InternalError(message) {
    var error = new Error(message);
    error.name = 'InternalError';
    return error;
  };
})();`;

/**
 * Espruino throws when code reads a method that does not exist on a string or a number
 * ("s.trimStart" throws, it is not undefined), so feature tests like `if (s.trimStart)` fail
 * on the device. This puts a throwing guard behind String.prototype and Number.prototype of the
 * context (symbols and a few names engines probe are let through). Host code is unaffected:
 * primitives use the prototypes of the realm that reads them.
 */
export function guardPrimitivePrototypes(context: { String: StringConstructor; Number: NumberConstructor; Object: ObjectConstructor; Error: ErrorConstructor }): void {
  const objectPrototype = context.Object.prototype;
  const passThrough = new Set(['toJSON', 'then', 'constructor', 'valueOf', 'toString', '__proto__']);
  for (const [owner, kind] of [[context.String.prototype, 'String'], [context.Number.prototype, 'Number']] as const) {
    const guard = new Proxy(objectPrototype, {
      get(target, key, receiver) {
        // Only reads on the values themselves throw; String.prototype.x stays undefined, as on Espruino.
        const onValue = typeof receiver === 'string' || typeof receiver === 'number';
        if (!onValue || typeof key === 'symbol' || passThrough.has(key) || key in target) return Reflect.get(target, key, receiver) as unknown;
        throw new context.Error(`Field or method "${key}" does not already exist, and can't create it on ${kind}`);
      },
    });
    Object.setPrototypeOf(owner, guard);
  }
}

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/** The bytes E.toString / E.toUint8Array make of one argument. */
function appendBytes(value: unknown, into: number[]): void {
  if (typeof value === 'string') {
    for (let i = 0; i < value.length; i++) into.push(value.charCodeAt(i) & 0xff);
  } else if (typeof value === 'number' || typeof value === 'boolean') {
    into.push(Number(value) & 0xff);
  } else if (ArrayBuffer.isView(value)) {
    if (value instanceof DataView || Object.prototype.toString.call(value) === '[object DataView]') {
      const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      for (const byte of bytes) into.push(byte);
    } else {
      const elements = value as unknown as ArrayLike<number>;
      for (let i = 0; i < elements.length; i++) into.push(Number(elements[i]) & 0xff);
    }
  } else if (isArrayBuffer(value)) {
    for (const byte of new Uint8Array(value)) into.push(byte);
  } else if (Array.isArray(value)) {
    for (const element of value) appendBytes(element, into);
  } else if (typeof value === 'object' && value !== null && 'data' in value) {
    const record = value as { data: unknown; count?: unknown };
    const count = record.count === undefined ? 1 : Number(record.count);
    for (let i = 0; i < count; i++) appendBytes(record.data, into);
  }
}

export function bytesOf(values: unknown[]): number[] {
  const bytes: number[] = [];
  for (const value of values) appendBytes(value, bytes);
  return bytes;
}

export function byteString(bytes: number[]): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 4096) text += String.fromCharCode(...bytes.slice(i, i + 4096));
  return text;
}

const crcTable = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3), as E.CRC32 returns it: an unsigned number. */
export function crc32(bytes: number[]): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** JsVars a name takes: up to 4 characters fit in the name variable itself. */
function nameCost(name: string): number {
  return name.length <= 4 ? 1 : 1 + Math.ceil((name.length - 4) / 12);
}

/** A value stored under a name: small whole numbers and booleans fit inside the name variable. */
function childCost(value: unknown, depth: number): number {
  if (value === undefined || value === null || typeof value === 'boolean') return 0;
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < 2 ** 31) return 0;
  return sizeOfJsVars(value, depth);
}

/**
 * An estimate of E.getSizeOf in 14-byte JsVars, fitted to PROFILE.md's measurements
 * (Uint8Array(1024) = 77, 100 short keys = 101, 100 twelve-char keys = 201, 100 {id, v} = 401).
 */
export function sizeOfJsVars(value: unknown, depth = 8): number {
  if (value === undefined || value === null || typeof value === 'boolean' || typeof value === 'number') return 1;
  if (typeof value === 'string') return Math.max(1, Math.ceil(value.length / 13));
  if (typeof value === 'function') return 1 + Math.ceil(String(value).length / 13);
  if (ArrayBuffer.isView(value)) return 3 + Math.ceil(value.byteLength / 14);
  if (isArrayBuffer(value)) return 2 + Math.ceil(value.byteLength / 14);
  if (depth <= 0) return 1;
  let total = 1;
  if (Array.isArray(value)) {
    for (const element of value) total += 1 + childCost(element, depth - 1);
    return total;
  }
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) total += nameCost(key) + childCost(child, depth - 1);
  return total;
}

/**
 * How Espruino's console prints one value: strings as they are, numbers to about 12 significant
 * digits, objects and arrays with spaces inside the brackets (`{ "a": 1 }`, `[ 1, 2 ]`, `[  ]`).
 * Espruino breaks nested objects over several lines; here they stay on one.
 */
export function formatValue(value: unknown): string {
  return typeof value === 'string' ? value : formatNested(value, 0);
}

function formatNested(value: unknown, depth: number): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return formatNumber(value) === 'null' ? String(value) : formatNumber(value);
  if (value === undefined || value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'function') return String(value);
  const kind = Object.prototype.toString.call(value).slice(8, -1);
  if (ArrayBuffer.isView(value) && kind !== 'DataView') return `new ${kind}([${Array.prototype.join.call(value, ', ')}])`;
  if (kind === 'Error') return String(value);
  if (depth > 8) return '...';
  if (Array.isArray(value)) return `[ ${value.map((element) => formatNested(element, depth + 1)).join(', ')} ]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, child]) => typeof child !== 'function');
    return `{ ${entries.map(([key, child]) => `${JSON.stringify(key)}: ${formatNested(child, depth + 1)}`).join(', ')} }`;
  }
  return String(value);
}
