// Runs the gate over the Espruino probe corpus and prints how many snippets of each status it flags,
// listing any OK snippet it wrongly refuses and the DIFF/ERROR/SYNTAX ones it lets through.
// Usage: npx tsx scripts/espruino-gate/check-corpus.ts [path/to/probes.json]
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkEspruinoSource, formatViolation } from './index.ts';

interface Probe {
  id: string;
  status: string;
  code: string;
}

const defaultCorpus = [
  join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'espruino', 'probes.json'),
  '/work/shared/espruino/probes.json',
].find((path) => existsSync(path));

const corpusPath = process.argv[2] ?? defaultCorpus;
if (corpusPath === undefined || !existsSync(corpusPath)) {
  console.error('check-corpus: no probes.json found; pass its path.');
  process.exit(2);
}
const probes = JSON.parse(readFileSync(corpusPath, 'utf8')) as Probe[];
const counts = new Map<string, { flagged: number; total: number }>();
const wrong: string[] = [];
for (const probe of probes) {
  const violations = checkEspruinoSource(probe.code);
  const count = counts.get(probe.status) ?? { flagged: 0, total: 0 };
  count.total++;
  if (violations.length > 0) count.flagged++;
  counts.set(probe.status, count);
  if (probe.status === 'OK' && violations.length > 0) wrong.push(`OK ${probe.id} refused: ${violations.map(formatViolation).join(' | ')}`);
  if (probe.status !== 'OK' && probe.status !== 'INFO' && violations.length === 0) wrong.push(`${probe.status} ${probe.id} passed: ${probe.code}`);
}
for (const [status, count] of counts) console.log(`${status.padEnd(6)} flagged ${String(count.flagged).padStart(3)} of ${count.total}`);
for (const line of wrong) console.log(line);
const okRefused = wrong.some((line) => line.startsWith('OK '));
const syntaxPassed = wrong.some((line) => line.startsWith('SYNTAX '));
process.exitCode = okRefused || syntaxPassed ? 1 : 0;
