// The sandbox context offers Espruino's globals and hides what Espruino lacks; its timers run on
// real or virtual time; stop and power-cycle behave like a board.
import { describe, expect, it } from 'vitest';
import { EspruinoSandbox, type EspruinoSandboxOptions } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { VirtualScheduler } from '../../hal-mocks/espruino-sandbox/scheduler.ts';
import { waitFor } from './helpers.ts';

function device(code: string, options: EspruinoSandboxOptions = {}): { sandbox: EspruinoSandbox; lines: string[] } {
  const lines: string[] = [];
  const sandbox = new EspruinoSandbox({ code, flashPageCount: 8, onConsoleLine: (line) => lines.push(line), ...options });
  return { sandbox, lines };
}

describe('sandbox globals', () => {
  const present = [
    'E', 'getTime', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'changeInterval', 'console', 'print',
    'require', 'process', 'Modules', 'Date', 'Math', 'JSON', 'Uint8Array', 'Int32Array', 'Float64Array', 'ArrayBuffer',
    'DataView', 'Promise', 'Error', 'TypeError', 'SyntaxError', 'ReferenceError', 'InternalError', 'btoa', 'atob',
    'parseInt', 'global', 'Math.sign', 'Object.fromEntries', 'E.on', 'E.toJS',
  ];
  const hidden = [
    'Map', 'Set', 'WeakMap', 'WeakSet', 'Symbol', 'Proxy', 'Reflect', 'Buffer', 'TextEncoder', 'TextDecoder',
    'queueMicrotask', 'setImmediate', 'RangeError', 'EvalError', 'BigInt', 'Intl', 'WebAssembly', 'structuredClone',
    'Array.from', 'Array.of', 'Array.prototype.at', 'Array.prototype.flat', 'Array.prototype.findLast',
    'Array.prototype.lastIndexOf', 'Array.prototype.reduceRight', 'Promise.race', 'Promise.allSettled', 'Promise.any',
    'Promise.prototype.finally', 'Number.isInteger', 'Number.isFinite', 'Number.MAX_SAFE_INTEGER', 'Number.EPSILON',
    'Math.trunc', 'Math.imul', 'Math.fround', 'Math.clz32', 'Math.log2', 'Math.log10', 'Math.hypot', 'Math.cbrt',
    'Object.freeze', 'Object.seal', 'Object.is', 'Date.UTC', 'String.prototype.trimStart',
    'String.prototype.codePointAt', 'String.fromCodePoint', 'String.prototype.matchAll', 'Uint8Array.from',
    'ArrayBuffer.prototype.slice', 'Number.prototype.toPrecision', 'process.exit',
    'URIError', 'encodeURI', 'decodeURI', 'Number.isNaN', 'Number.parseFloat', 'ArrayBuffer.isView',
  ];

  it('offers what Espruino has', () => {
    const { sandbox } = device('');
    sandbox.boot();
    for (const name of present) expect(sandbox.evaluate(`typeof ${name}`), name).not.toBe('undefined');
    expect(sandbox.evaluate('typeof require("Storage").write')).toBe('function');
    expect(sandbox.evaluate('typeof require("net").connect')).toBe('function');
    expect(sandbox.evaluate('typeof require("tls").connect')).toBe('function');
    expect(sandbox.evaluate('typeof require("Wifi").connect')).toBe('function');
    expect(sandbox.evaluate('process.env.BOARD')).toBe('ESP32');
    expect(sandbox.evaluate('Number("12") + new Number(3) + Number.MAX_VALUE * 0 + (5).constructor("1")')).toBe(16);
    sandbox.stop();
  });

  it('hides what Espruino lacks', () => {
    const { sandbox } = device('');
    sandbox.boot();
    for (const name of hidden) expect(sandbox.evaluate(`typeof ${name}`), name).toBe('undefined');
    expect(() => sandbox.evaluate('require("fs")')).toThrow('Module fs not found');
    sandbox.stop();
  });

  it('has no Wifi on the linux platform, but quit()', async () => {
    const halts: string[] = [];
    const { sandbox } = device('', { platform: 'linux', onHalt: (reason) => halts.push(reason) });
    sandbox.boot();
    expect(() => sandbox.evaluate('require("Wifi")')).toThrow('Module Wifi not found');
    expect(sandbox.evaluate('process.env.BOARD')).toBe('LINUX');
    sandbox.evaluate('setInterval(function () {}, 1000); quit()');
    await waitFor(() => sandbox.state === 'off', 'quit');
    expect(halts).toEqual(['quit']);
    expect(sandbox.timerCount).toBe(0);
  });

  it('throws, as Espruino does, when code reads a missing method of a string or number', () => {
    const { sandbox } = device('');
    sandbox.boot();
    expect(() => sandbox.evaluate('"x".trimStart')).toThrow('Field or method "trimStart" does not already exist, and can\'t create it on String');
    expect(() => sandbox.evaluate('(1.5).toPrecision')).toThrow(/"toPrecision" does not already exist/);
    expect(sandbox.evaluate('" x ".trim() + "a,b".split(",").length + (5).toFixed(1) + "ab".padStart(3, "-")')).toBe('x25.0-ab');
    expect(sandbox.evaluate('var o = {}; o.missing')).toBeUndefined();
    sandbox.stop();
  });

  it('mimics Espruino quirks: split ignores its limit, JSON ignores replacers, fromCharCode takes 256', () => {
    const { sandbox } = device('');
    sandbox.boot();
    expect(sandbox.evaluate('"a,b,c".split(",", 1).length')).toBe(3);
    expect(sandbox.evaluate('JSON.stringify({a: 1}, function () { return 5; })')).toBe('{"a":1}');
    expect(sandbox.evaluate('JSON.parse("[1]", function () { return 5; })[0]')).toBe(1);
    expect(() => sandbox.evaluate('var a = []; for (var i = 0; i < 300; i++) a.push(65); String.fromCharCode.apply(null, a)')).toThrow(/256/);
    sandbox.stop();
  });

  it('E.toString, E.toUint8Array, E.CRC32 and E.getSizeOf work on bytes', () => {
    const { sandbox } = device('');
    sandbox.boot();
    expect(sandbox.evaluate('E.toString(new Uint8Array([104, 105, 255]))')).toBe('hi\xff');
    expect(sandbox.evaluate('E.toString([1, 2], "a", 3)')).toBe('\x01\x02a\x03');
    expect(sandbox.evaluate('var u = E.toUint8Array("ab", [1]); u instanceof Uint8Array && u.join(",")')).toBe('97,98,1');
    expect(sandbox.evaluate('E.CRC32("hello")')).toBe(0x3610a686);
    expect(sandbox.evaluate('E.getSizeOf(new Uint8Array(1024))')).toBe(77);
    expect(sandbox.evaluate('var a = []; for (var i = 0; i < 100; i++) a.push({id: i, v: i}); E.getSizeOf(a)')).toBe(401);
    expect(sandbox.evaluate('btoa("\\xff\\x00")')).toBe('/wA=');
    const memory = sandbox.evaluate('process.memory()') as { free: number; total: number };
    expect(memory.total).toBe(16383);
    expect(memory.free).toBeLessThan(memory.total);
    sandbox.stop();
  });

  it('with memoryCheck warn, warns when a bundle is too big to boot as a file on a real Espruino', () => {
    const big = `var filler = function () { return ${JSON.stringify('x'.repeat(60_000))}; }; print("booted");`;
    const warnings: string[] = [];
    const { sandbox, lines } = device(big, { memoryCheck: 'warn', onSandboxWarning: (message) => warnings.push(message) });
    sandbox.boot();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^a \d+-byte bundle needs about \d+ JsVars while it boots as a file, more than the 16383 there are/);
    expect(sandbox.warnings).toEqual(warnings);
    // The device's own console stays as it is.
    expect(lines).toEqual(['booted']);
    sandbox.stop();
    const quiet = device(big, { onSandboxWarning: (message) => warnings.push(message) });
    quiet.sandbox.boot();
    expect(quiet.sandbox.warnings).toEqual([]);
    quiet.sandbox.stop();
    const small = device('print("ok")', { memoryCheck: 'warn', onSandboxWarning: (message) => warnings.push(message) });
    small.sandbox.boot();
    expect(small.sandbox.warnings).toEqual([]);
    small.sandbox.stop();
  });

  it('prints console.log and print lines, and reports uncaught errors without dying', async () => {
    const { sandbox, lines } = device('console.log("a", 1, {b: 2}); print([], {}, 0.1 + 0.2, [1, "x"]); print("p"); setTimeout(function () { throw new Error("boom"); }, 0); setTimeout(function () { print("still alive"); }, 5);');
    sandbox.boot();
    await waitFor(() => lines.includes('still alive'), 'the second timer');
    expect(lines[0]).toBe('a 1 { "b": 2 }');
    expect(lines[1]).toBe('[  ] {  } 0.3 [ 1, "x" ]');
    expect(lines).toContain('p');
    expect(lines).toContain('Uncaught Error: boom');
    expect(sandbox.uncaughtErrors).toHaveLength(1);
    sandbox.stop();
  });
});

describe('sandbox timers and lifecycle', () => {
  it('runs timers on a virtual clock, deterministically', () => {
    const scheduler = new VirtualScheduler(Date.UTC(2026, 0, 1));
    const code = `
      var n = 0;
      var id = setInterval(function () { n++; print("tick " + n + " at " + Math.round(getTime() - 1767225600)); if (n === 3) clearInterval(id); }, 1000);
      setTimeout(function (a, b) { print("once " + a + b); }, 1500, "x", "y");`;
    const { sandbox, lines } = device(code, { scheduler });
    sandbox.boot();
    expect(lines).toEqual([]);
    scheduler.advance(999);
    expect(lines).toEqual([]);
    scheduler.advance(10_000);
    expect(lines).toEqual(['tick 1 at 1', 'once xy', 'tick 2 at 2', 'tick 3 at 3']);
    expect(sandbox.timerCount).toBe(0);
    expect(sandbox.evaluate('Date.now()')).toBe(Date.UTC(2026, 0, 1) + 10_999);
    expect(sandbox.evaluate('new Date().toISOString()')).toBe('2026-01-01T00:00:10.999Z');
    expect(sandbox.evaluate('new Date(0) instanceof Date && new Date(0).getTime()')).toBe(0);
    sandbox.stop();
  });

  it('replays Math.random from a seed', () => {
    const draw = (seed: number): unknown => {
      const { sandbox } = device('', { randomSeed: seed });
      sandbox.boot();
      const values = sandbox.evaluate('[Math.random(), Math.random(), E.hwRand()].join(",")');
      sandbox.stop();
      return values;
    };
    expect(draw(7)).toBe(draw(7));
    expect(draw(7)).not.toBe(draw(8));
  });

  it('clearTimeout() with no argument clears every timer, as on Espruino', () => {
    const scheduler = new VirtualScheduler();
    const { sandbox, lines } = device('setTimeout(function () { print("a"); }, 10); setInterval(function () { print("b"); }, 10); clearTimeout();', { scheduler });
    sandbox.boot();
    scheduler.advance(100);
    expect(lines).toEqual([]);
    expect(sandbox.timerCount).toBe(0);
    sandbox.stop();
  });

  it('stop() clears timers; powerCycle() boots again on the same flash', () => {
    const scheduler = new VirtualScheduler();
    const code = `
      var s = require("Storage");
      var boots = (parseInt(s.read("boots") || "0", 10) || 0) + 1;
      s.write("boots", String(boots));
      print("boot " + boots);
      setInterval(function () { print("tick"); }, 100);`;
    const { sandbox, lines } = device(code, { scheduler });
    sandbox.boot();
    scheduler.advance(100);
    sandbox.stop();
    expect(sandbox.timerCount).toBe(0);
    expect(scheduler.pendingCount).toBe(0);
    scheduler.advance(1000);
    expect(lines).toEqual(['boot 1', 'tick']);
    sandbox.powerCycle();
    expect(lines.at(-1)).toBe('boot 2');
    expect(sandbox.boots).toBe(2);
    sandbox.stop();
  });

  it('halts at a power cut, even if the firmware catches the error, and boots again after', () => {
    const scheduler = new VirtualScheduler();
    const halts: string[] = [];
    const code = `
      var s = require("Storage");
      print("boot, files: " + s.list().join(","));
      setInterval(function () { try { s.write("f" + Math.floor(getTime() * 1000 % 100000), "x"); } catch (e) { print("caught"); } print("wrote"); }, 10);`;
    const { sandbox, lines } = device(code, { scheduler, onHalt: (reason) => halts.push(reason) });
    sandbox.boot();
    scheduler.advance(20); // two files, two flash operations each
    sandbox.storage.cutPowerAfter(2); // the third file, then the fourth's header fails
    scheduler.advance(100);
    expect(halts).toEqual(['power-loss']);
    expect(sandbox.state).toBe('off');
    expect(lines.filter((line) => line === 'wrote')).toHaveLength(3);
    expect(lines).toContain('-- power lost --');
    sandbox.powerCycle();
    expect(lines.at(-1)).toMatch(/^boot, files: f\d+,f\d+,f\d+$/);
    sandbox.stop();
  });
});
