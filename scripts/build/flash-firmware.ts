// Uploads the firmware bundle and the device configuration to a board with the `espruino` npm CLI,
// stored so the board runs the firmware at boot (Storage `.bootcde`), or writes the upload to a file.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deviceConfigError, deviceConfigFileName } from '../../firmware/protocol/device-config.ts';
import { displayPath, espruinoModules, repoRoot } from './build-firmware.ts';

/**
 * The Storage file the firmware runs from: `.bootcde`, the code Espruino runs at every boot (what
 * E.setBootCode writes). It replaces whatever program the board had. Not `.boot0`: the CLI ends an
 * upload with load(".boot0"), and load(name) runs the boot files and then the named file, so the
 * firmware would start twice (two sets of timers and sockets; seen on Espruino 2v29).
 */
export const bootFileName = '.bootcde';

export interface FlashOptions {
  /** Serial port (`/dev/ttyUSB0`), or `tcp://host:port` for a board or Linux build on telnet. */
  port?: string;
  bundleFile: string;
  /** A device configuration JSON file (as `tandem provision` writes), stored as deviceConfigFileName. */
  configFile?: string;
  baud: number;
  /** Write what would be sent to this file instead of connecting. */
  dryRunFile?: string;
  /** Give up when the upload has not completed after this long. */
  timeoutMs: number;
  /** Prints progress lines. */
  log: (line: string) => void;
}

export interface FlashResult {
  ok: boolean;
  /** One line saying what went wrong, when not ok. */
  error?: string;
}

/** An operating error of the flash command (bad input, no board): one line for the user. */
export class FlashError extends Error {}

/**
 * Reads and checks a device configuration file. Returns it as compact JSON, the form stored on the
 * board, or throws FlashError naming the file and the first bad field.
 */
export function loadDeviceConfig(path: string): { json: string; deviceId: string } {
  if (!existsSync(path)) throw new FlashError(`tandem flash: config file ${path} does not exist`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FlashError(`tandem flash: config file ${path} is not JSON: ${(error as Error).message}`);
  }
  const problem = deviceConfigError(parsed);
  if (problem !== null) throw new FlashError(`tandem flash: config file ${path}: ${problem}`);
  const json = JSON.stringify(parsed);
  for (let index = 0; index < json.length; index++) {
    if (json.charCodeAt(index) > 127) throw new FlashError(`tandem flash: config file ${path}: only ASCII text can be stored (Espruino strings are bytes)`);
  }
  return { json, deviceId: (parsed as { deviceId: string }).deviceId };
}

/** The espruino CLI arguments for an upload (or, with dryRunFile, for writing it to a file). */
export function espruinoArguments(options: { port?: string; baud: number; boardFile: string; bundleFile: string; configCopy?: string; dryRunFile?: string }): string[] {
  const args = [
    // Without Bluetooth hardware the CLI crashes unless BLE is off (PROFILE.md).
    '--no-ble',
    // A local board description: the CLI then knows Storage, net, Wifi... are built in and does
    // not try to fetch them from the web, and knows the firmware (2v29) can write Storage.
    '--board', options.boardFile,
    // The same upload every time (no setTime() with the PC's clock), so a dry run equals a flash.
    '--config', 'SET_TIME_ON_WRITE=false',
  ];
  if (options.configCopy !== undefined) args.push('--storage', `${deviceConfigFileName}:${options.configCopy}`);
  args.push('--storage', `${bootFileName}:-`);
  if (options.dryRunFile !== undefined) args.push('-n', '-o', options.dryRunFile);
  else args.push('-p', options.port as string, '-b', String(options.baud));
  args.push(options.bundleFile);
  return args;
}

function boardDescription(): string {
  return JSON.stringify({ info: { name: 'ESP32 (Tandem)', binary_version: '2v29', builtin_modules: espruinoModules } });
}

/** Runs the upload. Never throws for operating errors: they come back as `{ ok: false, error }`. */
export async function flashFirmware(options: FlashOptions): Promise<FlashResult> {
  const { log } = options;
  if (!existsSync(options.bundleFile)) {
    return { ok: false, error: `tandem flash: no bundle at ${displayPath(options.bundleFile)}: run \`npm run build\` first` };
  }
  const workDir = mkdtempSync(join(tmpdir(), 'tandem-flash-'));
  try {
    const boardFile = join(workDir, 'board.json');
    writeFileSync(boardFile, boardDescription());
    log(`flash: bundle ${displayPath(options.bundleFile)} (${statSync(options.bundleFile).size.toLocaleString('en-US')} bytes) -> Storage ${bootFileName} (runs at boot)`);
    let configCopy: string | undefined;
    if (options.configFile !== undefined) {
      const config = loadDeviceConfig(options.configFile);
      configCopy = join(workDir, deviceConfigFileName);
      writeFileSync(configCopy, config.json);
      log(`flash: config ${displayPath(options.configFile)} (device ${config.deviceId}) -> Storage ${deviceConfigFileName}`);
    } else {
      log(`flash: no --config: the board keeps the ${deviceConfigFileName} it has`);
    }
    const args = espruinoArguments({ ...options, boardFile, configCopy });
    if (options.dryRunFile !== undefined) {
      rmSync(options.dryRunFile, { force: true });
      const run = await runEspruino(args, options.timeoutMs, () => undefined);
      if (!existsSync(options.dryRunFile)) {
        return { ok: false, error: `tandem flash: the espruino CLI wrote no ${options.dryRunFile}: ${run.lastLines.join(' / ') || `exit code ${run.exitCode}`}` };
      }
      log(`flash: dry run: wrote ${displayPath(options.dryRunFile)} (${statSync(options.dryRunFile).size.toLocaleString('en-US')} bytes), the code the espruino CLI sends (its serial layer adds only reset() and echo-off framing)`);
      return { ok: true };
    }

    const port = options.port as string;
    log(`flash: connecting to ${port} at ${options.baud} baud (espruino CLI, gives up after ${Math.round(options.timeoutMs / 1000)} s) ...`);
    const run = await runEspruino(args, options.timeoutMs, (line) => log(`  espruino: ${line}`));
    if (run.uploadComplete) {
      log(`flash: done: ${bootFileName}${configCopy === undefined ? '' : ` and ${deviceConfigFileName}`} written; the board runs the firmware now and at every boot`);
      return { ok: true };
    }
    if (run.unableToConnect || !run.connected) {
      const reason = run.lastLines.find((line) => /not found|error|unable/i.test(line));
      return { ok: false, error: `tandem flash: no board answered on ${port}${reason === undefined ? '' : ` (${reason})`}` };
    }
    if (run.timedOut) {
      return { ok: false, error: `tandem flash: no board answered on ${port} within ${Math.round(options.timeoutMs / 1000)} s (check the port, the baud rate and that Espruino runs on the board)` };
    }
    return { ok: false, error: `tandem flash: upload to ${port} did not complete: ${run.lastLines.join(' / ') || `exit code ${run.exitCode}`}` };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

interface EspruinoRun {
  exitCode: number | null;
  timedOut: boolean;
  connected: boolean;
  unableToConnect: boolean;
  uploadComplete: boolean;
  lastLines: string[];
}

/** Where the CLI is: this project's own copy, so no global install is needed. */
export const espruinoCli = join(repoRoot, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');

/**
 * Runs the espruino CLI, feeding its lines to `onLine`. It can hang after an upload (PROFILE.md),
 * so it is stopped shortly after "Upload Complete" and, in any case, after `timeoutMs`.
 */
function runEspruino(args: string[], timeoutMs: number, onLine: (line: string) => void): Promise<EspruinoRun> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [espruinoCli, ...args], {
      cwd: repoRoot,
      // An open stdin that never closes: the CLI treats end-of-input as a request to quit.
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    const run: EspruinoRun = { exitCode: null, timedOut: false, connected: false, unableToConnect: false, uploadComplete: false, lastLines: [] };
    let buffered = '';
    let graceTimer: NodeJS.Timeout | undefined;
    const handleLine = (line: string) => {
      const text = line.replace(/\r/g, '').trimEnd();
      if (text === '' || /^Espruino Command-line Tool|^-+$|^Explicit board JSON/.test(text)) return;
      if (/^Connected/i.test(text)) run.connected = true;
      if (/Unable to connect|not found/i.test(text)) run.unableToConnect = true;
      if (/Upload Complete/i.test(text)) {
        run.uploadComplete = true;
        graceTimer ??= setTimeout(() => child.kill('SIGKILL'), 3000);
      }
      run.lastLines.push(text);
      if (run.lastLines.length > 5) run.lastLines.shift();
      onLine(text);
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        handleLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      run.timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      if (buffered !== '') handleLine(buffered);
      run.exitCode = code;
      resolvePromise(run);
    });
  });
}
