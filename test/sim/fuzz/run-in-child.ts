// The project's fuzz runner (scripts/commands/fuzz.ts) calls `fuzz(seed, cases)` synchronously, but
// the cloud fuzzers are asynchronous (SQLite, HTTP). `runFuzzInChild` runs an async target in a
// child process and waits for it, so those targets plug into `npm run fuzz -- NAME` unchanged.
// The child is fuzz-child.ts (a separate entry: the targets import this file).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface AsyncFuzzResult {
  cases: number;
  codes: Record<string, number>;
  [figure: string]: unknown;
}

export const resultMarker = 'FUZZ-RESULT ';
export const failMarker = 'FUZZ-FAIL ';
const marker = resultMarker;
const childEntry = fileURLToPath(new URL('./fuzz-child.ts', import.meta.url));

/** Runs `fuzzAsync(seed, cases)` of the module at `modulePath` in a child; throws its failure. */
export function runFuzzInChild(modulePath: string, seed: number, cases: number): AsyncFuzzResult {
  const child = spawnSync(process.execPath, ['--import', 'tsx', childEntry, modulePath, String(seed), String(cases)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const lines = (child.stdout ?? '').split('\n');
  const result = lines.find((line) => line.startsWith(marker));
  if (child.status === 0 && result !== undefined) return JSON.parse(result.slice(marker.length)) as AsyncFuzzResult;
  const failure = lines.find((line) => line.startsWith(failMarker));
  const detail = failure !== undefined ? failure.slice(failMarker.length) : `exit ${child.status ?? child.signal}: ${(child.stderr ?? '').split('\n').slice(-12).join('\n')}`;
  throw new Error(detail);
}
