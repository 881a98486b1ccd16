// Runs every OK probe snippet in a real Espruino Linux binary twice, as written and as the build's
// esbuild settings minify it, and compares the output: proof that lowering and minification keep
// the meaning on Espruino itself. About a minute; rerun after an esbuild upgrade.
// Usage: ESPRUINO_BIN=/path/to/espruino npx tsx scripts/build/check-minifier-on-espruino.ts [probes.json]
import { transform } from 'esbuild';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { espruinoCodeOptions, repoRoot } from './build-firmware.ts';

const binary = process.env.ESPRUINO_BIN;
const corpusPath = process.argv[2] ?? [join(repoRoot, '..', 'shared', 'espruino', 'probes.json'), '/work/shared/espruino/probes.json'].find((path) => existsSync(path));
if (binary === undefined || !existsSync(binary) || corpusPath === undefined) {
  console.error('check-minifier-on-espruino: set ESPRUINO_BIN to an Espruino Linux binary (and pass probes.json if it is not in ../shared).');
  process.exit(2);
}

/** The console output without the banner, prompts and line-end noise. */
function consoleText(output: string): string {
  return output
    .replace(/\r/g, '')
    .replace(/\x1b\[J/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && line.trim() !== '>' && !/^ ?[_|]|Open Source|sales of|Donate|espruino\.com|^ \dv\d/.test(line))
    .map((line) => line.replace(/^>/, ''))
    .join('\n');
}

function runFile(dir: string, file: string): Promise<string> {
  return new Promise((resolveOutput) => {
    // Stdin stays an open pipe: at end of input the Linux build reads garbage as console input.
    const child = spawn(binary as string, [file], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('latin1')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('close', () => {
      clearTimeout(timer);
      resolveOutput(consoleText(output));
    });
  });
}

const probes = (JSON.parse(readFileSync(corpusPath, 'utf8')) as { id: string; status: string; code: string }[]).filter((probe) => probe.status === 'OK');
const dir = mkdtempSync(join(tmpdir(), 'tandem-minifier-check-'));
let same = 0;
const differing: string[] = [];
try {
  for (const [index, probe] of probes.entries()) {
    let minified: string;
    try {
      minified = (await transform(probe.code, { ...espruinoCodeOptions, loader: 'js' })).code;
    } catch {
      continue; // esbuild refuses it (assigning a const): nothing to compare
    }
    // Every snippet ends within 300 ms (its own timers are at most 50 ms).
    writeFileSync(join(dir, `raw${index}.js`), `${probe.code}\n;setTimeout(quit, 300);`);
    writeFileSync(join(dir, `min${index}.js`), `${minified}\n;setTimeout(quit, 300);`);
    const [raw, min] = await Promise.all([runFile(dir, `raw${index}.js`), runFile(dir, `min${index}.js`)]);
    if (raw === min) same++;
    else differing.push(`${probe.id}\n  as written: ${JSON.stringify(raw)}\n  minified:   ${JSON.stringify(min)}`);
    if ((index + 1) % 25 === 0) console.log(`check-minifier-on-espruino: ${index + 1} of ${probes.length} ...`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
for (const line of differing) console.log(`DIFFERS ${line}`);
console.log(`check-minifier-on-espruino: ${same} OK snippets print the same minified, ${differing.length} differ`);
process.exitCode = differing.length === 0 ? 0 : 1;
