// `tandem bench [NAME...]`: runs the benchmarks in bench/<name>.bench.ts, all of them by default.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeResults, resultsPath, type Benchmark } from '../../bench/results.ts';
import { parseOptions, runCommand, UsageError } from '../cli.ts';

export const summary = 'Run benchmarks (all, or the ones named) and merge figures into bench/results.json';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');

function benchmarkNames(): string[] {
  return readdirSync(benchDir)
    .filter((file) => file.endsWith('.bench.ts'))
    .map((file) => file.slice(0, -'.bench.ts'.length))
    .sort();
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseOptions('bench', args, { help: { type: 'boolean' }, quick: { type: 'boolean' } }, true);
    const names = benchmarkNames();
    if (values.help) {
      console.log(`Usage: tandem bench [--quick] [NAME...]\n\nBenchmarks: ${names.join(', ') || '(none yet)'}\n--quick runs smaller sizes (used by tests).`);
      return 0;
    }
    const chosen = positionals.length > 0 ? positionals : names;
    for (const name of chosen) {
      if (!names.includes(name)) throw new UsageError(`tandem bench: no benchmark '${name}'. Known: ${names.join(', ')}.`);
    }
    for (const [index, name] of chosen.entries()) {
      console.log(`[${index + 1}/${chosen.length}] bench ${name} ...`);
      const benchmark = (await import(join(benchDir, `${name}.bench.ts`))) as Benchmark;
      const started = Date.now();
      const figures = await benchmark.run({ quick: Boolean(values.quick) });
      mergeResults(name, figures);
      console.log(`bench ${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s, figures merged into ${resultsPath}`);
    }
    return 0;
  });
}
