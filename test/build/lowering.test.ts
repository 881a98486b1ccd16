// What esbuild's lowering and minifier emit stays inside what Espruino runs: every OK probe snippet
// still passes the gate after minification, and ES2020+ syntax the firmware may use is lowered
// without helpers, keeping its meaning (checked by running the bundle in Node).
import { transform } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFirmware, espruinoCodeOptions } from '../../scripts/build/build-firmware.ts';
import { checkEspruinoSource } from '../../scripts/espruino-gate/index.ts';

const here = dirname(fileURLToPath(import.meta.url));
const corpusPath = [join(here, '..', '..', '..', 'shared', 'espruino', 'probes.json'), '/work/shared/espruino/probes.json'].find((path) => existsSync(path));
const workDir = mkdtempSync(join(tmpdir(), 'tandem-lowering-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

describe('lowering: the minifier adds nothing Espruino lacks', () => {
  it('every OK probe snippet, minified as the build does, still passes the gate', async () => {
    expect(corpusPath).toBeDefined();
    const probes = (JSON.parse(readFileSync(corpusPath as string, 'utf8')) as { id: string; status: string; code: string }[]).filter((probe) => probe.status === 'OK');
    expect(probes).toHaveLength(154);
    const refused: string[] = [];
    const notCompiled: string[] = [];
    for (const probe of probes) {
      let code: string;
      try {
        code = (await transform(probe.code, { ...espruinoCodeOptions, loader: 'js' })).code;
      } catch {
        notCompiled.push(probe.id);
        continue;
      }
      const violations = checkEspruinoSource(code);
      if (violations.length > 0) refused.push(`${probe.id}: ${violations.map((violation) => violation.message).join('; ')} in ${code}`);
    }
    expect(refused).toEqual([]);
    // Assigning a const is a compile error for esbuild (the probe checks the run-time TypeError).
    expect(notCompiled).toEqual(['const-reassign']);
  });
});

describe('lowering: ES2016+ syntax the firmware may write', () => {
  it('becomes ES5-level code without helpers and keeps its meaning', async () => {
    const dir = join(workDir, 'modern');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'main.ts'),
      [
        'class Counter {',
        '  count = 0;',
        '  static created = 0;',
        '  constructor(readonly step: number) { Counter.created++; }',
        '  bump(): number { this.count += this.step; return this.count; }',
        '}',
        'const config: { port?: number; host?: { name?: string } } | null = { host: {} };',
        'let retries: number | undefined;',
        'retries ??= 3;',
        'let flag = 0;',
        'flag ||= 7;',
        'const counter = new Counter(2 ** 3);',
        'counter.bump();',
        'let caught = 0;',
        'try { JSON.parse("{"); } catch { caught = 1; }',
        'const big = 1_000_000;',
        'console.log(`${config?.port ?? 1883} ${config?.host?.name ?? "none"} ${retries} ${flag} ${counter.bump()} ${Counter.created} ${caught} ${big}`);',
        '',
      ].join('\n'),
    );
    const outFile = join(dir, 'out', 'firmware.js');
    const result = await buildFirmware({ entry: join(dir, 'main.ts'), outFile, quiet: true });
    expect(result.failures).toEqual([]);
    const code = readFileSync(outFile, 'utf8');
    expect(code).not.toMatch(/\?\.|\?\?|\*\*|__publicField|__defNormalProp/);
    const printed: string[] = [];
    runInNewContext(code, { console: { log: (text: string) => printed.push(text) } });
    expect(printed).toEqual(['1883 none 3 7 16 1 1 1000000']);
  });
});
