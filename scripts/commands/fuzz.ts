// `tandem fuzz TARGET --cases N [--seed S]`: runs a seeded fuzz target for a long time, in chunks
// with progress. Targets are files `test/**/<target>.fuzz.ts` exporting `summary` and
// `fuzz(seed, cases)` (or one function named fuzz...), which throws on the first violation; add a
// file and it is listed here. Chunk k runs with seed S+k, so any failure replays on its own.
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Run a seeded fuzz target (wire, mqtt-parser, ...) for N cases';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const testDir = join(repoRoot, 'test');
const suffix = '.fuzz.ts';
const chunkCases = 10_000;

type FuzzFunction = (seed: number, cases: number) => { cases: number; codes?: Record<string, number> } & Record<string, unknown>;

interface FuzzModule {
  summary?: string;
  fuzz?: FuzzFunction;
  [name: string]: unknown;
}

/** Every fuzz target under test/, by name (the file name without `.fuzz.ts`). */
export function fuzzTargets(): Map<string, string> {
  const targets = new Map<string, string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== 'node_modules') walk(path);
      else if (entry.isFile() && entry.name.endsWith(suffix)) targets.set(entry.name.slice(0, -suffix.length), path);
    }
  };
  walk(testDir);
  return targets;
}

/** The target's loop: `fuzz`, else its one export whose name starts with `fuzz`. */
export function fuzzFunctionOf(module: FuzzModule, name: string): FuzzFunction {
  if (typeof module.fuzz === 'function') return module.fuzz;
  const candidates = Object.keys(module).filter((key) => key.startsWith('fuzz') && typeof module[key] === 'function');
  if (candidates.length !== 1) throw new UsageError(`tandem fuzz: target '${name}' must export fuzz(seed, cases) (found ${candidates.join(', ') || 'none'}).`);
  return module[candidates[0]] as FuzzFunction;
}

function usage(targets: Map<string, string>, summaries: Map<string, string>): string {
  const lines = ['Usage: tandem fuzz TARGET [--cases N] [--seed S]', '', 'Targets:'];
  for (const [name, path] of [...targets].sort()) lines.push(`  ${name.padEnd(14)} ${summaries.get(name) ?? ''} (${relative(repoRoot, path)})`);
  lines.push('', `--cases N   cases to run (default 100000), in chunks of ${chunkCases}`, '--seed S    first seed (default 1); chunk k runs with seed S+k');
  return lines.join('\n');
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseOptions('fuzz', args, { help: { type: 'boolean' }, cases: { type: 'string' }, seed: { type: 'string' } }, true);
    const targets = fuzzTargets();
    if (values.help || positionals.length === 0) {
      const summaries = new Map<string, string>();
      for (const [name, path] of targets) summaries.set(name, String(((await import(path)) as FuzzModule).summary ?? ''));
      console.log(usage(targets, summaries));
      return values.help ? 0 : 2;
    }
    if (positionals.length > 1) throw new UsageError('tandem fuzz: name one target.');
    const name = positionals[0];
    const path = targets.get(name);
    if (path === undefined) throw new UsageError(`tandem fuzz: no target '${name}'. Known: ${[...targets.keys()].sort().join(', ')}.`);
    const cases = parseWholeNumber('fuzz', 'cases', values.cases, 100_000);
    const seed = parseWholeNumber('fuzz', 'seed', values.seed, 1);
    const fuzz = fuzzFunctionOf((await import(path)) as FuzzModule, name);

    const codes: Record<string, number> = {};
    const started = Date.now();
    let done = 0;
    for (let chunk = 0; done < cases; chunk++) {
      const size = Math.min(chunkCases, cases - done);
      const chunkSeed = seed + chunk;
      try {
        const result = fuzz(chunkSeed, size);
        for (const [code, n] of Object.entries(result.codes ?? {})) codes[code] = (codes[code] ?? 0) + n;
      } catch (error) {
        console.error(`tandem fuzz ${name}: FAILED: ${(error as Error).message}`);
        console.error(`Replay: npm run fuzz -- ${name} --seed ${chunkSeed} --cases ${size}`);
        return 1;
      }
      done += size;
      const seconds = (Date.now() - started) / 1000;
      console.log(`fuzz ${name}: ${done.toLocaleString('en-US')}/${cases.toLocaleString('en-US')} cases, ${seconds.toFixed(1)} s, ${Math.round(done / Math.max(seconds, 0.001)).toLocaleString('en-US')} cases/s`);
    }
    const histogram = Object.entries(codes).sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ');
    console.log(`fuzz ${name}: PASSED ${cases.toLocaleString('en-US')} cases from seed ${seed}; results: ${histogram || '(target reports none)'}`);
    return 0;
  });
}
