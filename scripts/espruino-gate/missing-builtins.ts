// The built-ins Espruino 2v2x lacks, as measured in /work/shared/espruino/PROFILE.md and probes.json,
// plus a few more found missing by asking the Espruino 2v29 Linux binary directly (marked "2v29").
// Each entry is a measured fact; the hint says what to write instead.

/** Globals that do not exist (a reference throws ReferenceError, `typeof` says "undefined"). */
export const missingGlobals: Record<string, string> = {
  Map: 'use a plain object with string keys, or parallel arrays',
  Set: 'use a plain object with string keys, or an array',
  WeakMap: 'store the value on the object itself',
  WeakSet: 'store a flag on the object itself',
  Symbol: 'use string keys',
  Proxy: 'call through explicit functions',
  Reflect: 'use Object.* functions',
  TextEncoder: 'strings are byte strings: use charCodeAt / E.toUint8Array',
  TextDecoder: 'strings are byte strings: use String.fromCharCode / E.toString',
  Buffer: 'use Uint8Array',
  queueMicrotask: 'use Promise.resolve().then(...) or setTimeout(fn, 0)',
  setImmediate: 'use setTimeout(fn, 0)',
  clearImmediate: 'use clearTimeout',
  RangeError: 'throw Error',
  EvalError: 'throw Error',
  BigInt: 'use two numbers or a Uint8Array',
  WeakRef: 'keep a plain reference',
  FinalizationRegistry: 'release resources explicitly',
  AggregateError: 'throw Error',
  // 2v29: typeof says "undefined".
  Intl: 'format numbers and dates by hand',
  escape: 'encode by hand',
  unescape: 'decode by hand',
  encodeURI: 'use encodeURIComponent',
  decodeURI: 'use decodeURIComponent',
  structuredClone: 'copy by hand, or JSON.parse(JSON.stringify(x))',
  // esbuild's CommonJS output assigns module.exports when the entry exports something.
  module: 'Espruino runs the bundle as a script: the firmware entry must not export',
};

/** Static members that do not exist on a built-in constructor or namespace. */
export const missingStaticMembers: Record<string, Record<string, string>> = {
  Promise: { race: 'settle with a flag', allSettled: 'count settled promises by hand', any: 'count rejections by hand' },
  Array: { from: 'use a loop or [].slice.call(x)', of: 'use an array literal' },
  Number: {
    isInteger: 'use x === Math.floor(x)',
    isFinite: 'use isFinite(x) with typeof x === "number"',
    isSafeInteger: 'compare against 9007199254740991',
    MAX_SAFE_INTEGER: 'write 9007199254740991',
    MIN_SAFE_INTEGER: 'write -9007199254740991',
    EPSILON: 'write 2.220446049250313e-16',
    parseFloat: 'use the global parseFloat',
    parseInt: 'use the global parseInt',
    isNaN: 'use x !== x (2v29)',
  },
  Math: {
    fround: 'store into a Float32Array and read back',
    imul: 'multiply the 16-bit halves',
    clz32: 'count with a loop',
    trunc: 'use x < 0 ? Math.ceil(x) : Math.floor(x)',
    log2: 'use Math.log(x) / Math.LN2',
    log10: 'use Math.log(x) / Math.LN10',
    hypot: 'use Math.sqrt(a * a + b * b)',
    cbrt: 'use Math.pow(x, 1 / 3)',
    expm1: 'use Math.exp(x) - 1 (2v29)',
    log1p: 'use Math.log(1 + x) (2v29)',
    sinh: 'use (Math.exp(x) - Math.exp(-x)) / 2 (2v29)',
    cosh: 'use (Math.exp(x) + Math.exp(-x)) / 2 (2v29)',
    tanh: 'write it with Math.exp (2v29)',
    asinh: 'write it with Math.log (2v29)',
    acosh: 'write it with Math.log (2v29)',
    atanh: 'write it with Math.log (2v29)',
  },
  Object: {
    freeze: 'do not rely on immutability',
    seal: 'do not rely on immutability',
    isFrozen: 'do not rely on immutability',
    isSealed: 'do not rely on immutability',
    preventExtensions: 'do not rely on immutability',
    isExtensible: 'do not rely on immutability',
    is: 'use === (plus a NaN check)',
    getOwnPropertySymbols: 'there are no symbols (2v29)',
  },
  Date: { UTC: 'compute milliseconds since the epoch by hand' },
  String: { fromCodePoint: 'use String.fromCharCode (byte strings)', raw: 'tagged templates are not supported' },
};

/** Typed array constructors: `from`, `of` and `BYTES_PER_ELEMENT` are missing on all of them. */
export const typedArrayNames = [
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
  'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array',
];
for (const name of typedArrayNames) {
  missingStaticMembers[name] = { from: 'use new ' + name + '(array)', of: 'use new ' + name + '([...])' };
}

/**
 * Instance methods missing on Espruino whatever the receiver's type (the gate sees a minified bundle
 * without types, so it refuses the property name). Called or only read (feature tests count too).
 */
export const missingInstanceMembers: Record<string, string> = {
  reduceRight: 'loop from the end',
  flat: 'concatenate in a loop',
  flatMap: 'map, then concatenate in a loop',
  findLast: 'loop from the end',
  findLastIndex: 'loop from the end',
  copyWithin: 'use typedArray.set(typedArray.subarray(...))',
  toPrecision: 'use toFixed',
  toExponential: 'use toFixed',
  trimStart: 'use a loop or trim()',
  trimEnd: 'use a loop or trim()',
  trimLeft: 'use a loop or trim()',
  trimRight: 'use a loop or trim()',
  codePointAt: 'use charCodeAt (byte strings)',
  matchAll: 'loop with regexp.exec',
  finally: 'use then(onDone, onDone)',
  BYTES_PER_ELEMENT: 'write the element size as a number',
  toSorted: 'copy with slice(), then sort (2v29)',
  toReversed: 'copy with slice(), then reverse (2v29)',
  normalize: 'strings are bytes: there is nothing to normalize (2v29)',
  localeCompare: 'compare with < and > (2v29)',
  toLocaleString: 'format by hand (2v29)',
  toLocaleDateString: 'format by hand (2v29)',
  toLocaleTimeString: 'format by hand (2v29)',
  toLocaleUpperCase: 'use toUpperCase (2v29)',
  toLocaleLowerCase: 'use toLowerCase (2v29)',
  getBigInt64: 'read two 32-bit halves (2v29)',
  setBigInt64: 'write two 32-bit halves (2v29)',
  getBigUint64: 'read two 32-bit halves (2v29)',
  setBigUint64: 'write two 32-bit halves (2v29)',
};

/** Calls missing on Espruino, recognised by name and argument count to spare look-alike methods. */
export const missingCallShapes: { name: string; argumentCounts: number[]; hint: string }[] = [
  { name: 'at', argumentCounts: [1], hint: 'index with x[i] (x[x.length - 1] for the last)' },
  { name: 'search', argumentCounts: [1], hint: 'use regexp.exec(s) and .index, or indexOf' },
  { name: 'keys', argumentCounts: [0], hint: 'arrays have no keys(): loop over the indexes' },
  { name: 'values', argumentCounts: [0], hint: 'arrays have no values(): loop over the array' },
  { name: 'entries', argumentCounts: [0], hint: 'arrays have no entries(): loop over the indexes' },
  { name: 'with', argumentCounts: [2], hint: 'copy with slice(), then assign (2v29)' },
];

/** Helpers `tsc --target ES5` emits that break on Espruino at run time (PROFILE.md "Syntax"). */
export const typeScriptHelperNames = ['__extends', '__spreadArray', '__generator', '__awaiter', '__spread', '__read', '__values', '__asyncGenerator'];
