// The child process of runFuzzInChild: `node --import tsx fuzz-child.ts MODULE SEED CASES` runs the
// module's fuzzAsync and prints one result line (or one failure line) for the parent to read.
import { failMarker, resultMarker, type AsyncFuzzResult } from './run-in-child.ts';

const [modulePath, seed, cases] = process.argv.slice(2);
const target = (await import(modulePath!)) as { fuzzAsync: (seed: number, cases: number) => Promise<AsyncFuzzResult> };
try {
  const result = await target.fuzzAsync(Number(seed), Number(cases));
  console.log(resultMarker + JSON.stringify(result));
  process.exit(0);
} catch (error) {
  console.log(failMarker + ((error as Error).message ?? String(error)).replace(/\n/g, ' | '));
  process.exit(1);
}
