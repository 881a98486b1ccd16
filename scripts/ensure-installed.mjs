// Runs before `npm start` and `npm test` (npm's pre-scripts): on a fresh clone it installs the
// locked dependencies first, so the README's two commands work on a new machine as they stand.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  console.log('tandem: first run, installing dependencies from package-lock.json (npm ci) ...');
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
  if (result.status !== 0) {
    console.error('tandem: npm ci failed; fix the error above, then run the command again.');
    process.exit(result.status ?? 1);
  }
}
