// The firmware build: the real firmware bundles under budget and passes the gate; a bad entry is
// refused naming the construct and its original .ts file:line; over budget fails. Bundles go to temp
// folders, never dist/, so tests that run the real dist/firmware.js are not disturbed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { buildFirmware, topLevelCollisions } from '../../scripts/build/build-firmware.ts';
import { run as runBuildCommand } from '../../scripts/commands/build.ts';
import { checkEspruinoSource } from '../../scripts/espruino-gate/index.ts';
import { firmwareBundleBytesMax } from '../../firmware/protocol/limits.ts';

const workDir = mkdtempSync(join(tmpdir(), 'tandem-build-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function writeEntry(name: string, files: Record<string, string>): string {
  const dir = join(workDir, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return join(dir, 'main.ts');
}

/** Runs `body` with console output captured, returning the lines. */
async function captured<T>(body: () => Promise<T>): Promise<{ value: T; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')));
  try {
    return { value: await body(), out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

describe('build: the real firmware', () => {
  it('bundles firmware/main.ts into one minified script under budget that passes the gate, with a source map', async () => {
    const outFile = join(workDir, 'real', 'firmware.js');
    const result = await buildFirmware({ outFile, quiet: true });
    expect(result.failures).toEqual([]);
    expect(result.ok).toBe(true);
    const code = readFileSync(outFile, 'utf8');
    // Unwrapped by default (RAM while starting), with no top-level name replacing an Espruino global.
    expect(code.startsWith('(function(){\n')).toBe(false);
    expect(topLevelCollisions(code)).toEqual([]);
    expect(Object.keys(result.mangledNames).length).toBeGreaterThan(100);
    expect(result.rawBytes).toBe(Buffer.byteLength(code));
    expect(result.rawBytes).toBeLessThanOrEqual(firmwareBundleBytesMax);
    expect(result.gzipBytes).toBeGreaterThan(0);
    expect(result.gzipBytes).toBeLessThan(result.rawBytes);
    expect(checkEspruinoSource(code)).toEqual([]);
    const map = JSON.parse(readFileSync(`${outFile}.map`, 'utf8')) as { sources: string[] };
    expect(map.sources.some((source) => source.endsWith('firmware/main.ts'))).toBe(true);
    // Nothing the minifier or esbuild's helpers could add that Espruino lacks.
    expect(code).not.toMatch(/__require|__spreadValues|__async|__publicField|Proxy/);
  });
});

describe('build: a bad entry is refused with construct and origin', () => {
  const entry = writeEntry('bad', {
    'main.ts': [
      '// A bad entry.',
      "import { pairSum, countKeys } from './helper.ts';",
      '',
      'console.log(pairSum({ a: 1, b: 2 }), countKeys([\'x\']));',
      'start();',
      'function start(): void {',
      "  console.log('started');",
      '}',
      '',
    ].join('\n'),
    'helper.ts': [
      '// Helpers with constructs the gate must refuse.',
      'export function pairSum(pair: { a: number; b: number }): number {',
      '  const { a, b } = pair;',
      '  return a + b;',
      '}',
      '',
      'export function countKeys(keys: string[]): number {',
      '  const index = new Map<string, number>();',
      '  for (let i = 0; i < keys.length; i++) index.set(keys[i] as string, i);',
      '  return index.size;',
      '}',
      '',
    ].join('\n'),
  });

  it('names destructuring, Map and use-before-declaration at their TypeScript lines', async () => {
    const outFile = join(workDir, 'bad-out', 'firmware.js');
    // A stale bundle from an earlier build must not survive a refused one.
    mkdirSync(join(workDir, 'bad-out'), { recursive: true });
    writeFileSync(outFile, 'stale');
    const result = await buildFirmware({ entry, outFile, quiet: true });
    expect(result.ok).toBe(false);
    const found = result.refusals.map((refusal) => ({
      rule: refusal.rule,
      file: refusal.origin?.file.split('/').pop(),
      line: refusal.origin?.line,
    }));
    expect(found).toEqual(
      expect.arrayContaining([
        { rule: 'destructuring', file: 'helper.ts', line: 3 },
        { rule: 'missing-global', file: 'helper.ts', line: 8 },
        { rule: 'use-before-declaration', file: 'main.ts', line: 5 },
      ]),
    );
    // The failure lines carry the original file:line, the construct, and the original name.
    expect(result.failures[0]).toMatch(/REFUSED .*firmware\.js: 3 constructs/);
    expect(result.failures.some((line) => line.includes('helper.ts:3:') && line.includes('destructuring pattern'))).toBe(true);
    expect(result.failures.some((line) => line.includes('helper.ts:8:') && line.includes('Map is missing on Espruino'))).toBe(true);
    expect(result.failures.some((line) => line.includes('main.ts:5:') && line.includes("function 'start' used before its declaration"))).toBe(true);
    expect(existsSync(outFile)).toBe(false);
  });

  it('tandem build --entry exits 1 and prints the refusal lines', async () => {
    const { value, err } = await captured(() => runBuildCommand(['--entry', entry, '--out', join(workDir, 'cmd-out', 'firmware.js')]));
    expect(value).toBe(1);
    expect(err.some((line) => /helper\.ts:3:\d+ {2}destructuring pattern/.test(line))).toBe(true);
  });

  it('refuses an entry that exports, and reports TypeScript that does not compile at its line', async () => {
    const exporting = writeEntry('exporting', { 'main.ts': 'export const x = 1;\nconsole.log(x);\n' });
    const exported = await buildFirmware({ entry: exporting, outFile: join(workDir, 'exp-out', 'f.js'), quiet: true });
    expect(exported.ok).toBe(false);
    expect(exported.failures.some((line) => line.includes('main.ts:1:') && line.includes('the firmware entry must not export'))).toBe(true);

    const broken = writeEntry('broken', { 'main.ts': "import { nothing } from './missing.ts';\nconsole.log(nothing);\n" });
    const failed = await buildFirmware({ entry: broken, outFile: join(workDir, 'broken-out', 'f.js'), quiet: true });
    expect(failed.ok).toBe(false);
    expect(failed.failures.join('\n')).toMatch(/main\.ts:1:\d+: Could not resolve "\.\/missing\.ts"/);
  });
});

describe('build: the size budget', () => {
  it('fails above the budget, naming sizes and the limit, and leaves no bundle', async () => {
    const outFile = join(workDir, 'over', 'firmware.js');
    const result = await buildFirmware({ outFile, budgetBytes: 100, quiet: true });
    expect(result.ok).toBe(false);
    expect(result.rawBytes).toBeGreaterThan(100);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toMatch(/FAILED: .* is [\d,]+ bytes \(gzip [\d,]+\) of the 100-byte budget .*over budget \(firmwareBundleBytesMax/);
    expect(existsSync(outFile)).toBe(false);
  });

  it('tandem build prints progress and sizes, exits 0; a bad --budget exits 2 with one line', async () => {
    const good = await captured(() => runBuildCommand(['--out', join(workDir, 'cmd-good', 'firmware.js')]));
    expect(good.value).toBe(0);
    expect(good.out[0]).toMatch(/^build: bundling firmware\/main\.ts/);
    expect(good.out.at(-1)).toMatch(/bytes \(gzip [\d,]+\) of the [\d,]+-byte budget .* gate passed/);
    const over = await captured(() => runBuildCommand(['--out', join(workDir, 'cmd-over', 'firmware.js'), '--budget', '10']));
    expect(over.value).toBe(1);
    const bad = await captured(() => runBuildCommand(['--budget', 'lots']));
    expect(bad.value).toBe(2);
    expect(bad.err).toEqual(["tandem build: --budget takes a whole number, got 'lots'."]);
  });
});
