// The benchmarks' shared plumbing: a readable table on stdout and figures merged into
// bench/results.json under each benchmark's own key.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const resultsPath = join(dirname(fileURLToPath(import.meta.url)), 'results.json');

/** A benchmark module: bench/<name>.bench.ts exports these two. */
export interface Benchmark {
  summary: string;
  /** Runs the benchmark, prints its table, and returns the figures stored under its name. */
  run(options: { quick: boolean }): Promise<Record<string, unknown>>;
}

/** Replaces the figures under `key` in bench/results.json, keeping every other key. */
export function mergeResults(key: string, figures: Record<string, unknown>): void {
  const all: Record<string, unknown> = existsSync(resultsPath)
    ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, unknown>)
    : {};
  all[key] = { ...figures, measuredAt: new Date().toISOString() };
  const sorted = Object.fromEntries(Object.keys(all).sort().map((name) => [name, all[name]]));
  writeFileSync(resultsPath, `${JSON.stringify(sorted, null, 2)}\n`);
}

/** Prints rows as an aligned table with a title line. */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const cells = [header, ...rows.map((row) => row.map((cell) => String(cell)))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  const line = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(cells[0]));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

/** `value` rounded to `digits` decimals, for tables and results.json. */
export function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}
