// Safe property mangling in the firmware build: private members nobody outside can see get short
// names; public, built-in, string-keyed and JSON-visible names keep theirs; the mangled bundle
// prints exactly what the unmangled one prints, and the same sources give the same bytes.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EspruinoSandbox } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { RealEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware, repoRoot, topLevelCollisions, type BuildResult } from '../../scripts/build/build-firmware.ts';
import { analyseMangleableNames, builtinPropertyNames, shortNames, type MangleAnalysis } from '../../scripts/build/mangle-names.ts';
import { blankProps } from '../../scripts/build/strip-props.ts';

const outputLines = [
  'bump 5 10',
  'describe idle/fast ok fast',
  'json {"snapshotValue":7}',
  'point 3 settings 2x',
  'keys openKey,otherKey, sent {"payloadKey":3,"nested":{"deepKey":4}}',
  'docs volts mV',
];
const workDir = mkdtempSync(join(tmpdir(), 'tandem-mangle-test-'));
const fixture = join(repoRoot, 'test', 'build', 'fixtures', 'mangle', 'main.ts');
const tsconfigPath = join(repoRoot, 'tsconfig.firmware.json');
let analysis: MangleAnalysis;
let mangled: BuildResult;
let plain: BuildResult;

beforeAll(async () => {
  analysis = analyseMangleableNames({ entry: fixture, tsconfigPath });
  mangled = await buildFirmware({ entry: fixture, outFile: join(workDir, 'mangled.js'), quiet: true, mangle: 'private', wrap: true });
  plain = await buildFirmware({ entry: fixture, outFile: join(workDir, 'plain.js'), quiet: true, mangle: false, stripDocs: false, wrap: true });
}, 30_000);
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function runInSandbox(path: string): string[] {
  const lines: string[] = [];
  const sandbox = new EspruinoSandbox({ bundlePath: path, onConsoleLine: (line) => lines.push(line) });
  sandbox.boot();
  const errors = sandbox.uncaughtErrors.map(String);
  sandbox.stop();
  expect(errors).toEqual([]);
  return lines;
}

describe('build: mangling private members', () => {
  it('mangles private members nothing outside the class names', () => {
    expect(Object.keys(analysis.cache)).toEqual(expect.arrayContaining(['counter', 'shownTotal', 'advance']));
    expect(analysis.privateNames).toEqual(expect.arrayContaining(['counter', 'readingState', 'byteLength', 'flavour', 'shownTotal', 'advance', 'snapshotValue']));
  });

  it('keeps a private name that is public elsewhere, built in, a string key, or seen by JSON.stringify', () => {
    for (const name of ['readingState', 'byteLength', 'flavour', 'snapshotValue']) expect(analysis.cache[name], name).toBeUndefined();
    expect(analysis.kept.readingState).toMatch(/^type member at test\/build\/fixtures\/mangle\/main\.ts:5$/);
    expect(analysis.kept.byteLength).toMatch(/lib\.es5\.d\.ts/);
    expect(analysis.kept.flavour).toMatch(/^(string used as a key|cast) at /);
    expect(analysis.kept.snapshotValue).toMatch(/^passed to an API at /);
  });

  it('writes short names into the bundle and leaves kept names alone', () => {
    const code = readFileSync(mangled.outFile, 'utf8');
    expect(mangled.ok).toBe(true);
    expect(mangled.mangledNames).toEqual(analysis.cache);
    for (const name of ['counter', 'shownTotal', 'advance']) {
      expect(code).not.toMatch(new RegExp(`\\.${name}\\b`));
      expect(code).toContain(`.${analysis.cache[name]}`);
    }
    for (const name of ['readingState', 'byteLength', 'flavour', 'snapshotValue']) expect(code).toMatch(new RegExp(`\\b${name}\\b`));
    expect(mangled.rawBytes).toBeLessThan(plain.rawBytes);
  });

  it('runs exactly as the unmangled bundle does (JSON shows the real private name)', () => {
    const expected = outputLines;
    expect(runInSandbox(plain.outFile)).toEqual(expected);
    expect(runInSandbox(mangled.outFile)).toEqual(expected);
  });

  it('gives the same bytes for the same sources', async () => {
    const again = await buildFirmware({ entry: fixture, outFile: join(workDir, 'again.js'), quiet: true, mangle: 'private', wrap: true });
    expect(readFileSync(again.outFile, 'utf8')).toBe(readFileSync(mangled.outFile, 'utf8'));
  });

  it('never mangles, nor produces, a built-in, an Espruino API or a public firmware name', () => {
    const builtins = builtinPropertyNames();
    for (const name of ['length', 'push', 'subarray', 'charCodeAt', 'toString', 'constructor', 'prototype', 'buffer']) expect(builtins.has(name), name).toBe(true);
    // The real firmware: Espruino API members (espruino.d.ts, @types/espruino), the config read
    // from JSON and the public members of what it imports are reserved.
    const firmware = analyseMangleableNames({ entry: join(repoRoot, 'firmware', 'main.ts'), tsconfigPath, scope: 'internal' });
    const apiAndConfig = ['readJSON', 'write', 'on', 'end', 'CRC32', 'memory', 'connect', 'host', 'port', 'ca', 'edge', 'debounce', 'password',
      'deviceId', 'secret', 'mqttHost', 'mqttPort', 'tls', 'caCert', 'wifiSsid', 'wifiPassword'];
    for (const name of apiAndConfig) expect(firmware.reserved.has(name), name).toBe(true);
    expect(Object.keys(firmware.cache).length).toBeGreaterThan(200);
    for (const result of [analysis, firmware]) {
      for (const [original, short] of Object.entries(result.cache)) {
        expect(result.reserved.has(original), original).toBe(false);
        expect(result.reserved.has(short), short).toBe(false);
        expect(builtins.has(short), short).toBe(false);
      }
      const shorts = Object.values(result.cache);
      expect(new Set(shorts).size).toBe(shorts.length);
    }
  });

  it('hands out short names in a fixed order, skipping the names to avoid', () => {
    const next = shortNames(new Set(['b', 'do']));
    const names = Array.from({ length: 60 }, () => next());
    expect(names.slice(0, 3)).toEqual(['a', 'c', 'd']);
    expect(names).not.toContain('b');
    expect(names[53]).toBe('aa');
    expect(new Set(names).size).toBe(60);
  });
});

describe('build: documentation properties', () => {
  it('leaves out a string property nothing reads and keeps one that is read', () => {
    expect(mangled.strippedProps).toEqual(['description']);
    expect(mangled.strippedCount).toBe(1);
    const code = readFileSync(mangled.outFile, 'utf8');
    expect(code).not.toContain('only for people reading the schema');
    expect(code).toContain('"mV"');
    expect(plain.strippedProps).toEqual([]);
    expect(readFileSync(plain.outFile, 'utf8')).toContain('only for people reading the schema');
  });

  it('blanks the property and its comma, keeping every line and column', () => {
    const text = "const a = { x: 1, description: 'd',\n  y: 2, description: `t` /* c */ , z: { description: 'in' } };\nconst b = { description: f() };";
    const result = blankProps('a.ts', text, new Set(['description']));
    expect(result.removed).toBe(3);
    expect(result.text.length).toBe(text.length);
    expect(result.text.split('\n').map((line) => line.length)).toEqual(text.split('\n').map((line) => line.length));
    // A value that runs code stays.
    expect(result.text).toContain('description: f()');
    expect(result.text.replace(/\s+/g, ' ')).toBe("const a = { x: 1, y: 2, z: { } }; const b = { description: f() };");
  });
});

describe("build: mangling every internal name ('internal' scope), unwrapped", () => {
  let internal: MangleAnalysis;
  let unwrapped: BuildResult;

  beforeAll(async () => {
    internal = analyseMangleableNames({ entry: fixture, tsconfigPath, scope: 'internal' });
    // The defaults: 'internal' scope, unwrapped.
    unwrapped = await buildFirmware({ entry: fixture, outFile: join(workDir, 'internal.js'), quiet: true });
  }, 30_000);

  it('mangles public names used only inside the bundle, and the private ones', () => {
    for (const name of ['px', 'py', 'bump', 'counter', 'shownTotal']) expect(internal.cache[name], name).toBeDefined();
  });

  it('keeps names that arrive from JSON, go to an open record, or are handed to JSON.stringify (nested too)', () => {
    expect(internal.kept.retries).toMatch(/^cast at /);
    expect(internal.kept.label).toMatch(/^cast at /);
    expect(internal.kept.openKey).toMatch(/^flows into a typed place at /);
    expect(internal.kept.otherKey).toMatch(/^flows into a typed place at /);
    expect(internal.kept.payloadKey).toMatch(/^passed to an API at /);
    expect(internal.kept.deepKey).toMatch(/^passed to an API at /);
    for (const name of ['byteLength', 'flavour', 'snapshotValue']) expect(internal.cache[name], name).toBeUndefined();
    // Public in Reading and private in Counter, but seen by nothing outside: mangled here.
    expect(internal.cache.readingState).toBeDefined();
  });

  it('is no IIFE, declares no Espruino global, and runs exactly as the unmangled wrapped bundle', () => {
    expect(unwrapped.ok).toBe(true);
    const code = readFileSync(unwrapped.outFile, 'utf8');
    expect(code.startsWith('(function(){')).toBe(false);
    expect(code).not.toMatch(/\.(px|py|bump)\b/);
    expect(unwrapped.rawBytes).toBeLessThan(mangled.rawBytes);
    expect(runInSandbox(unwrapped.outFile)).toEqual(outputLines);
  });

  it('refuses an unwrapped bundle whose top-level names would replace Espruino globals', () => {
    expect(topLevelCollisions('var E=1,q=2;function D2(){}class onInit{}')).toEqual(['E', 'D2', 'onInit']);
    expect(topLevelCollisions('var q=1;(function(){var E=2})()')).toEqual([]);
  });

  const binary = process.env.ESPRUINO_BIN;
  it.skipIf(binary === undefined || binary === '')('prints the same in the real Espruino binary (ESPRUINO_BIN)', async () => {
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary!, workDir: join(workDir, 'real'), bundlePath: unwrapped.outFile, onConsoleLine: (line) => lines.push(line) });
    void device.start();
    const deadline = Date.now() + 10_000;
    while (!lines.some((line) => line.startsWith('keys ')) && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
    await device.stop();
    const printed = lines.filter((line) => outputLines.some((expected) => expected.split(' ')[0] === line.split(' ')[0]));
    expect(printed).toEqual(outputLines);
  }, 20_000);
});
