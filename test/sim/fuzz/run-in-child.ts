// The project's fuzz runner (scripts/commands/fuzz.ts) calls `fuzz(seed, cases)` synchronously, but
// the cloud fuzzers are asynchronous (SQLite, HTTP). `runFuzzInChild` runs an async target in a
// child process and waits for it, so those targets plug into `npm run fuzz -- NAME` unchanged.
// Run as a script, this file is the child: `node --import tsx run-in-child.ts MODULE SEED CASES`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface AsyncFuzzResult {
  cases: number;
  codes: Record<string, number>;
  [figure: string]: unknown;
}

const marker = 'FUZZ-RESULT ';
const failMarker = 'FUZZ-FAIL ';
const self = fileURLToPath(import.meta.url);

/** Runs `fuzzAsync(seed, cases)` of the module at `modulePath` in a child; throws its failure. */
export function runFuzzInChild(modulePath: string, seed: number, cases: number): AsyncFuzzResult {
  const child = spawnSync(process.execPath, ['--import', 'tsx', self, modulePath, String(seed), String(cases)], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const lines = (child.stdout ?? '').split('\n');
  const result = lines.find((line) => line.startsWith(marker));
  if (child.status === 0 && result !== undefined) return JSON.parse(result.slice(marker.length)) as AsyncFuzzResult;
  const failure = lines.find((line) => line.startsWith(failMarker));
  const detail = failure !== undefined ? failure.slice(failMarker.length) : `exit ${child.status ?? child.signal}: ${(child.stderr ?? '').split('\n').slice(-12).join('\n')}`;
  throw new Error(detail);
}

if (process.argv[1] === self) {
  const [modulePath, seed, cases] = process.argv.slice(2);
  const target = (await import(modulePath!)) as { fuzzAsync: (seed: number, cases: number) => Promise<AsyncFuzzResult> };
  try {
    const result = await target.fuzzAsync(Number(seed), Number(cases));
    console.log(marker + JSON.stringify(result));
    process.exit(0);
  } catch (error) {
    console.log(failMarker + ((error as Error).message ?? String(error)).replace(/\n/g, ' | '));
    process.exit(1);
  }
}
