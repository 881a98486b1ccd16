// One test per gate rule: what it refuses (rule id, message, position) and the look-alikes it passes.
import { describe, expect, it } from 'vitest';
import { checkEspruinoSource as checkWhole, type Violation } from '../../scripts/espruino-gate/index.ts';

/** These tests check fragments: names like `xs` and `o` stand for variables declared elsewhere. */
const checkEspruinoSource = (code: string) => checkWhole(code, { refuseUndeclared: false });
const rules = (code: string) => checkEspruinoSource(code).map((violation) => violation.rule);
const only = (code: string): Violation => {
  const violations = checkEspruinoSource(code);
  expect(violations, JSON.stringify(violations)).toHaveLength(1);
  return violations[0] as Violation;
};

describe('gate: syntax Espruino rejects', () => {
  it.each([
    ['var {a} = o;', 'destructuring', 1, 4],
    ['function f([x]) { return x; }', 'destructuring', 1, 11],
    ['f(...xs);', 'spread', 1, 2],
    ['var o = {...p};', 'spread', 1, 9],
    ['function f(a, ...rest) { return rest; }', 'rest', 1, 14],
    ['function f(a, b = 2) { return a + b; }', 'default-parameter', 1, 14],
    ['var x = 2 ** 3;', 'exponent', 1, 8],
    ['var x = o?.a;', 'optional-chaining', 1, 8],
    ['a ??= 1;', 'logical-assignment', 1, 0],
    ['var o = {[k]: 1};', 'computed-key', 1, 9],
    ['tag`x`;', 'tagged-template', 1, 0],
    ['async function f() {}', 'async', 1, 0],
    ['function* g() {}', 'generator', 1, 0],
    ['outer: for (;;) break outer;', 'label', 1, 0],
    ['function F() { return new.target; }', 'meta-property', 1, 22],
    ['class A { #p = 1; }', 'private-member', 1, 10],
    ['var n = 10n;', 'bigint', 1, 8],
    ['var o = { m() { return super.m(); } };', 'super-outside-class', 1, 23],
  ] as const)('%s -> %s at %i:%i', (code, rule, line, column) => {
    const violation = only(code);
    expect(violation.rule).toBe(rule);
    expect([violation.line, violation.column]).toEqual([line, column]);
  });

  it("names esbuild's super(...arguments) so the fix is clear", () => {
    const violation = only('class A {} class B extends A { constructor() { super(...arguments); this.y = 2; } }');
    expect(violation.rule).toBe('spread');
    expect(violation.message).toContain('esbuild writes for a subclass with fields and no constructor (write the constructor)');
  });

  it('reports code that does not parse as one parse-error with its position', () => {
    const violation = only('var x = ;');
    expect(violation.rule).toBe('parse-error');
    expect([violation.line, violation.column]).toEqual([1, 8]);
  });

  it('passes what Espruino parses: classes, arrows, templates, ??, optional catch, getters', () => {
    const code = [
      'class A { constructor(x) { this.x = x; } get v() { return this.x; } static make() { return new A(1); } }',
      'class B extends A { m() { return super.v; } }',
      'var f = (a, b) => a + b; var t = `a${f(1, 2)}b`; var n = null ?? 1;',
      'try { f(); } catch { }',
      'var o = { get g() { return 1; }, m() { return 2; } };',
      'for (var v of [1, 2]) f(v, 0);',
    ].join('\n');
    expect(checkEspruinoSource(code)).toEqual([]);
  });
});

describe('gate: missing built-ins', () => {
  it.each([
    ['new Map()', 'Map is missing on Espruino'],
    ['new WeakSet()', 'WeakSet is missing on Espruino'],
    ['Symbol("x")', 'Symbol is missing on Espruino'],
    ['Reflect.ownKeys(o)', 'Reflect is missing on Espruino'],
    ['p.finally(f)', '.finally is missing on Espruino'],
    ['Promise.race(ps)', 'Promise.race is missing on Espruino'],
    ['Array.from(x)', 'Array.from is missing on Espruino'],
    ['Array.of(1)', 'Array.of is missing on Espruino'],
    ['xs.reduceRight(f)', '.reduceRight is missing on Espruino'],
    ['xs.lastIndexOf(1)', '.lastIndexOf is missing on Espruino arrays'],
    ['xs.flat()', '.flat is missing on Espruino'],
    ['xs.flatMap(f)', '.flatMap is missing on Espruino'],
    ['xs.at(-1)', '.at() is missing on Espruino'],
    ['xs.findLast(f)', '.findLast is missing on Espruino'],
    ['xs.keys()', '.keys() is missing on Espruino'],
    ['xs.entries()', '.entries() is missing on Espruino'],
    ['xs.copyWithin(0, 1)', '.copyWithin is missing on Espruino'],
    ['Number.isInteger(x)', 'Number.isInteger is missing on Espruino'],
    ['Number.EPSILON', 'Number.EPSILON is missing on Espruino'],
    ['x.toPrecision(3)', '.toPrecision is missing on Espruino'],
    ['Math.imul(a, b)', 'Math.imul is missing on Espruino'],
    ['Math.trunc(x)', 'Math.trunc is missing on Espruino'],
    ['s.trimStart()', '.trimStart is missing on Espruino'],
    ['s.codePointAt(0)', '.codePointAt is missing on Espruino'],
    ['String.fromCodePoint(65)', 'String.fromCodePoint is missing on Espruino'],
    ['s.matchAll(r)', '.matchAll is missing on Espruino'],
    ['s.search(r)', '.search() is missing on Espruino'],
    ['Date.UTC(2024, 0)', 'Date.UTC is missing on Espruino'],
    ['d.setUTCHours(1)', 'Date .setUTCHours is missing on Espruino'],
    ['Float32Array.of(1)', 'Float32Array.of is missing on Espruino'],
    ['Uint8Array.BYTES_PER_ELEMENT', '.BYTES_PER_ELEMENT is missing on Espruino'],
    ['new ArrayBuffer(4).slice(1)', 'ArrayBuffer .slice is missing on Espruino'],
    ['new TextEncoder()', 'TextEncoder is missing on Espruino'],
    ['Buffer.from("x")', 'Buffer is missing on Espruino'],
    ['queueMicrotask(f)', 'queueMicrotask is missing on Espruino'],
    ['setImmediate(f)', 'setImmediate is missing on Espruino'],
    ['process.exit(1)', 'process.exit is missing on Espruino'],
    ['Object.freeze(o)', 'Object.freeze is missing on Espruino'],
    // Found missing by asking the 2v29 binary directly.
    ['Number.isNaN(x)', 'Number.isNaN is missing on Espruino'],
    ['Math.tanh(x)', 'Math.tanh is missing on Espruino'],
    ['a.localeCompare(b)', '.localeCompare is missing on Espruino'],
    ['xs.toSorted()', '.toSorted is missing on Espruino'],
    ['encodeURI(s)', 'encodeURI is missing on Espruino'],
  ])('%s', (code, message) => {
    const messages = checkEspruinoSource(code).map((violation) => violation.message);
    expect(messages.some((text) => text.includes(message)), JSON.stringify(messages)).toBe(true);
  });

  it('refuses a name declared nowhere (a missing import), but not typeof feature tests or Espruino globals', () => {
    const violations = checkWhole('var k = fieldUint + 1;');
    expect(violations).toHaveLength(1);
    expect(violations[0]).toMatchObject({ rule: 'unknown-global', column: 8 });
    expect(violations[0]?.message).toBe("'fieldUint' is declared nowhere in the code and is no Espruino global (a missing import?)");
    expect(checkWhole('if (typeof fieldUint === "number") E.getSizeOf(D2); setTimeout(print, 1, getTime()); var x = [Math, JSON, Uint8Array, require("Storage")];')).toEqual([]);
    expect(checkEspruinoSource('var k = fieldUint + 1;')).toEqual([]);
  });

  it('passes locals that shadow a missing global, and the built-ins Espruino has', () => {
    expect(checkEspruinoSource('function f(Map) { return new Map(); } var Set = {}; Set.x = 1;')).toEqual([]);
    expect(checkEspruinoSource('Math.sign(-1); Math.floor(1.5); Object.keys(o); Object.entries(o); "abc".lastIndexOf("b"); [].slice.call(a); Promise.all([]); new Uint8Array(4).slice(1);')).toEqual([]);
  });
});

describe('gate: silent differences', () => {
  it('refuses a function called before its declaration, naming it', () => {
    const violation = only('start();\nfunction start() {}');
    expect(violation).toMatchObject({ rule: 'use-before-declaration', line: 1, column: 0 });
    expect(violation.message).toBe("function 'start' used before its declaration (Espruino does not hoist)");
  });

  it('refuses a var read before its declaration, also inside a function', () => {
    expect(only('function f() { x = 1; var x; return x; }')).toMatchObject({ rule: 'use-before-declaration', column: 15 });
  });

  it('refuses a call that runs a function using a later declaration', () => {
    const violation = only('function a() { return b(); }\na();\nfunction b() { return 1; }');
    expect(violation).toMatchObject({ rule: 'use-before-declaration', line: 2, column: 0 });
    expect(violation.message).toContain("'a'() runs before 'b' is declared");
  });

  it('follows calls through functions: a() -> b() -> limit declared later', () => {
    const violation = only('function b() { return limit; }\nfunction a() { return b(); }\na();\nvar limit = 3;');
    expect(violation).toMatchObject({ rule: 'use-before-declaration', line: 3 });
  });

  it('passes code that only refers ahead from functions that run later', () => {
    expect(checkEspruinoSource('function a() { return b(); }\nfunction b() { return 1; }\na();')).toEqual([]);
    expect(checkEspruinoSource('function a() { return later; }\nsetTimeout(a, 10);\nvar later = 1;')).toEqual([]);
    // let/const have a temporal dead zone in every engine: not an Espruino difference.
    expect(checkEspruinoSource('try { z; let z = 1; } catch (e) {}')).toEqual([]);
  });

  it('refuses a closure capturing a for-let binding, not a var one or a plain use', () => {
    expect(only('for (let i = 0; i < 3; i++) fs.push(function () { return i; });')).toMatchObject({ rule: 'loop-closure', column: 57 });
    expect(only('for (const v of xs) fs.push(() => v);')).toMatchObject({ rule: 'loop-closure' });
    expect(checkEspruinoSource('for (let i = 0; i < 3; i++) total += i;')).toEqual([]);
    expect(checkEspruinoSource('for (var i = 0; i < 3; i++) fs.push(function () { return i; });')).toEqual([]);
  });

  it("refuses 'arguments' inside an arrow, not inside a function", () => {
    expect(only('function f() { return () => arguments[0]; }')).toMatchObject({ rule: 'arrow-arguments', column: 28 });
    expect(checkEspruinoSource('function f() { return function () { return arguments[0]; }; }')).toEqual([]);
  });

  it('refuses class extends a built-in, not a local class', () => {
    expect(only('class E2 extends Error {}')).toMatchObject({ rule: 'extends-builtin', column: 17 });
    expect(checkEspruinoSource('class A {} class B extends A {}')).toEqual([]);
  });

  it('refuses a static read through a subclass, a class called without new, and a three-level super chain', () => {
    expect(only('class A { static make() { return 1; } } class B extends A {} B.make();')).toMatchObject({ rule: 'static-inheritance' });
    expect(only('class A {} A();')).toMatchObject({ rule: 'class-call' });
    const chain = 'class A { f() { return 1; } } class B extends A { f() { return super.f(); } } class C extends B { f() { return super.f(); } }';
    expect(rules(chain)).toEqual(['super-chain']);
    expect(checkEspruinoSource('class A { f() { return 1; } } class B extends A { f() { return super.f(); } }')).toEqual([]);
  });

  it('refuses Array.prototype.* and .length assignment', () => {
    expect(only('Array.prototype.slice.call(arguments);')).toMatchObject({ rule: 'array-prototype', message: 'Array.prototype.slice is undefined on Espruino (use [].slice)' });
    expect(only('xs.length = 0;')).toMatchObject({ rule: 'length-assignment' });
    expect(checkEspruinoSource('var n = xs.length; [].slice.call(arguments);')).toEqual([]);
  });

  it('refuses JSON reviver, replacer and indentation, and split with a limit', () => {
    expect(rules('JSON.parse(s, f);')).toEqual(['json-reviver']);
    expect(rules('JSON.stringify(o, f);')).toEqual(['json-replacer']);
    expect(rules('JSON.stringify(o, null, 2);')).toEqual(['json-indent']);
    expect(rules('s.split(",", 2);')).toEqual(['split-limit']);
    expect(checkEspruinoSource('JSON.parse(s); JSON.stringify(o); JSON.stringify(o, null); s.split(",");')).toEqual([]);
  });

  it('refuses strings Espruino cannot hold as bytes', () => {
    expect(only('var s = "\\u263a";')).toMatchObject({ rule: 'wide-char', message: 'string with char code 9786 > 255 (Espruino strings are bytes)' });
    expect(only('var s = "é";')).toMatchObject({ rule: 'non-ascii-source' });
    expect(only('var s = `\\u0100`;')).toMatchObject({ rule: 'wide-char' });
    expect(checkEspruinoSource('var s = "\\xff\\u00e9";')).toEqual([]);
  });

  it('refuses the other differences PROFILE.md lists', () => {
    expect(rules('Object.defineProperty(o, "k", { value: 1, enumerable: false });')).toEqual(['define-property']);
    expect(rules('"use strict"; f();')).toEqual(['use-strict']);
    expect(rules('new DataView(buffer, 2);')).toEqual(['dataview-offset']);
    expect(rules('Object.create(null);')).toEqual(['object-create']);
    expect(rules('var o = { b: 1, 1: 2 };')).toEqual(['object-key-order']);
    expect(rules('eval("with (o) { a; }");')).toEqual(['with']);
    expect(checkEspruinoSource('new DataView(buffer, 2, 4); var o = { 1: 2, b: 1 }; eval("1 + 2");')).toEqual([]);
  });
});

describe('gate: regular expressions (parsed with regexpp)', () => {
  it.each([
    ['/ab?c/', "'?' quantifier"],
    ['/a{2,3}/', "'{2,3}' quantifier"],
    ['/a+?/', 'non-greedy quantifier'],
    ['/(ab)+/', 'quantifier on a group'],
    ['/a(?=b)/', 'lookahead assertion'],
    ['/(?<=a)b/', 'lookbehind assertion'],
    ['/\\bfoo/', 'word boundary'],
    ['/(a)\\1/', 'backreference'],
    ['/(?<y>a)/', 'named group'],
    ['/\\u0041/', "'\\u' escape"],
    ['/a/m', "RegExp flag 'm'"],
    ['/a/s', "RegExp flag 's'"],
    ['/a/u', "RegExp flag 'u'"],
    ['/a/y', "RegExp flag 'y'"],
    ['new RegExp("a?", "g")', "'?' quantifier"],
  ])('%s is refused: %s', (code, message) => {
    const violations = checkEspruinoSource(`var r = ${code};`);
    expect(violations.map((violation) => violation.rule)).toContain('regexp');
    expect(violations.some((violation) => violation.message.includes(message)), JSON.stringify(violations)).toBe(true);
  });

  it('passes the subset Espruino runs', () => {
    expect(checkEspruinoSource('var r = [/^[a-f0-9]+$/i, /\\d+/g, /a\\sb/, /^(cat|dog)$/, /^(?:cat|dog)$/, /x=(\\d+)/, /\\x41/, new RegExp("x+", "g")];')).toEqual([]);
  });
});
