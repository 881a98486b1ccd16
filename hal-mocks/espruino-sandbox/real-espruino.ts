// Runs the same bundle in a real Espruino Linux binary (the user's, never copied into the repo),
// in a working folder holding its espruino.flash, and turns its console into clean lines.
// From PROFILE.md: keep stdin an open pipe (at end-of-file the stock build reads garbage as
// console input); a banner comes first; lines end in \r\n and carry prompt fragments.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deviceConfigFileName, type DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { EspruinoStorage } from './storage.ts';

/** Storage geometry of the Linux build in the ESP32 format: espruino.flash is 224 pages of 4096 bytes. */
const linuxFlashPageBytes = 4096;
const linuxFlashPageCount = 224;

export interface RealEspruinoOptions {
  binaryPath: string;
  /** The interpreter's current folder: its Storage lives in ./espruino.flash there. */
  workDir: string;
  bundlePath: string;
  onConsoleLine?: (line: string) => void;
  /**
   * 'file' (default) runs the bundle as a file: Espruino then holds its whole source in JsVars.
   * 'storage' first stores it as boot code (.bootcde) and boots from it, as a flashed board does
   * (see real-espruino-boot.ts); use it for bundles too big for RAM.
   */
  bootFrom?: 'file' | 'storage';
}

/**
 * One console line without what the REPL adds around program output: carriage returns, the ">"
 * prompt, backspaces and erase sequences. Returns undefined for a line that held only those.
 */
export function cleanConsoleLine(raw: string): string | undefined {
  let line = raw
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
    .replace(/[\r\x08]/g, '')
    .replace(/^(?:>\s?)+/, '');
  line = line.replace(/\s+$/, '');
  return line === '' ? undefined : line;
}

/** Splits a byte stream into cleaned console lines. */
class LineSplitter {
  private pending = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.pending += chunk.toString('latin1');
    let newline = this.pending.indexOf('\n');
    while (newline >= 0) {
      const line = cleanConsoleLine(this.pending.slice(0, newline));
      this.pending = this.pending.slice(newline + 1);
      if (line !== undefined) this.onLine(line);
      newline = this.pending.indexOf('\n');
    }
  }

  flush(): void {
    const line = cleanConsoleLine(this.pending);
    this.pending = '';
    if (line !== undefined) this.onLine(line);
  }
}

function spawnEspruino(binaryPath: string, args: string[], workDir: string, onLine: (line: string) => void): { child: ChildProcess; exited: Promise<number> } {
  mkdirSync(workDir, { recursive: true });
  const child = spawn(binaryPath, args, { cwd: workDir, stdio: ['pipe', 'pipe', 'pipe'] });
  const splitter = new LineSplitter(onLine);
  child.stdout!.on('data', (chunk: Buffer) => splitter.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => splitter.push(chunk));
  // stdin stays open and silent for the whole run.
  child.stdin!.on('error', () => undefined);
  const exited = new Promise<number>((resolvePromise) => {
    child.on('error', (error) => {
      onLine(`(could not start ${binaryPath}: ${error.message})`);
      resolvePromise(127);
    });
    child.on('exit', (code, signal) => {
      splitter.flush();
      resolvePromise(code ?? (signal === null ? 0 : 128));
    });
  });
  return { child, exited };
}

/** Runs `code` with `espruino -e` in `workDir` until it calls quit() (or `timeoutMs` passes). */
export async function runEspruinoCode(binaryPath: string, workDir: string, code: string, timeoutMs = 10_000): Promise<{ exitCode: number; lines: string[] }> {
  const lines: string[] = [];
  const { child, exited } = spawnEspruino(binaryPath, ['-e', code], workDir, (line) => lines.push(line));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exitCode = await exited;
  clearTimeout(timer);
  child.stdin?.destroy();
  return { exitCode, lines };
}

/** Stores the device config in the binary's own Storage (./espruino.flash in `workDir`). */
export async function writeDeviceConfigWithBinary(binaryPath: string, workDir: string, config: DeviceConfig): Promise<void> {
  // Passed as base64 so no quoting can go wrong on the command line.
  const encoded = Buffer.from(JSON.stringify(config), 'latin1').toString('base64');
  const code = `require("Storage").write(${JSON.stringify(deviceConfigFileName)},atob(${JSON.stringify(encoded)}));print("CONFIG-WRITTEN");quit();`;
  const result = await runEspruinoCode(binaryPath, workDir, code);
  if (!result.lines.some((line) => line.includes('CONFIG-WRITTEN'))) {
    throw new Error(`Espruino at ${binaryPath} did not store the device config (exit ${result.exitCode}): ${result.lines.slice(-5).join(' | ')}`);
  }
}

/** The bundle running in a real interpreter, as one device. */
export class RealEspruino {
  private readonly options: RealEspruinoOptions;
  private child: ChildProcess | undefined;
  private exited: Promise<number> | undefined;

  constructor(options: RealEspruinoOptions) {
    this.options = options;
  }

  /**
   * Starts the interpreter on the bundle; resolves with its exit code when it ends. With
   * bootFrom 'storage' the bundle is stored as .bootcde first (call `await install()` before).
   */
  start(): Promise<number> {
    if (this.child !== undefined) throw new Error('RealEspruino: already started');
    const onLine = this.options.onConsoleLine ?? ((line: string) => process.stdout.write(`${line}\n`));
    // `-e` with no code of its own runs the stored .bootcde, as a board does at power-on.
    const args = this.options.bootFrom === 'storage' ? ['-e', ''] : [this.options.bundlePath];
    const { child, exited } = spawnEspruino(this.options.binaryPath, args, this.options.workDir, onLine);
    this.child = child;
    this.exited = exited;
    return exited;
  }

  /**
   * bootFrom 'storage': writes the bundle into the interpreter's Storage as .bootcde. The sandbox's
   * EspruinoStorage writes espruino.flash byte for byte as the Linux build does (a parity test
   * checks it), so this takes milliseconds instead of one interpreter run per chunk.
   */
  install(): void {
    const storage = new EspruinoStorage({ pageBytes: linuxFlashPageBytes, pageCount: linuxFlashPageCount, imagePath: join(this.options.workDir, 'espruino.flash') });
    try {
      storage.write('.bootcde', readFileSync(this.options.bundlePath, 'latin1'));
    } finally {
      storage.close();
    }
  }

  /** Ends the interpreter: SIGTERM, then SIGKILL if it is still there after a second. */
  async stop(): Promise<void> {
    const child = this.child;
    const exited = this.exited;
    if (child === undefined || exited === undefined) return;
    if (child.exitCode === null && child.signalCode === null) {
      // In REPL mode (-e) SIGTERM only interrupts JS: there SIGKILL ends it.
      child.kill(this.options.bootFrom === 'storage' ? 'SIGKILL' : 'SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await exited;
      clearTimeout(timer);
    }
    child.stdin?.destroy();
    this.child = undefined;
  }
}
