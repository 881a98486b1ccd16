// Runs before `npm start` and `npm test` (npm's pre-scripts): on a fresh clone it installs the
// locked dependencies first, so the README's two commands work on a new machine as they stand.
// With --browser (before the tests) it also installs Debian's chromium for the dashboard tests
// where it is missing and the machine lets us (root with apt-get); otherwise it says what to do.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

function run(command, args, what) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: new URL('..', import.meta.url) });
  if (result.status !== 0) {
    console.error(`tandem: ${what} failed; fix the error above, then run the command again.`);
    process.exit(result.status ?? 1);
  }
}

if (!existsSync(new URL('../node_modules/.package-lock.json', import.meta.url))) {
  console.log('tandem: first run, installing dependencies from package-lock.json (npm ci) ...');
  run('npm', ['ci', '--no-audit', '--no-fund'], 'npm ci');
}

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
if (process.argv.includes('--browser') && !existsSync(chromium)) {
  const canInstall = process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) {
    console.error(`tandem: the dashboard tests drive Chromium at ${chromium}, which is missing. Install it (Debian: sudo apt-get install chromium) or set CHROMIUM_PATH.`);
    process.exit(1);
  }
  console.log("tandem: installing Debian's chromium for the dashboard tests (apt-get) ...");
  run('apt-get', ['update', '-q'], 'apt-get update');
  run('apt-get', ['install', '-y', '-q', 'chromium'], 'apt-get install chromium');
}
