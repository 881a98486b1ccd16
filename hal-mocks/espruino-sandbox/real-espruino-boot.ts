// Boots a real Espruino Linux binary from the boot code in its Storage (.bootcde, written with
// RealEspruino.install) plus a little code of the test's own, e.g. a memory report: the way a board
// runs after `tandem flash`. Running the full firmware as a file instead makes Espruino hold the
// whole source text in JsVars, which a 16383-JsVar (ESP32-format) build cannot spare.
import { spawn, type ChildProcess } from 'node:child_process';

export interface BootedEspruino {
  child: ChildProcess;
  /** Everything the interpreter printed so far, carriage returns and prompts removed. */
  output(): string[];
  stop(): void;
}

/**
 * Boots the interpreter in `workDir` so that it runs its .bootcde, plus `extraCode` (e.g. a
 * memory report). Stdin stays an open pipe: at end of input the Linux build reads garbage.
 */
export function bootFromStorage(binaryPath: string, workDir: string, extraCode = ''): BootedEspruino {
  const child = spawn(binaryPath, ['-e', extraCode], { cwd: workDir, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  child.stdin!.on('error', () => undefined);
  return {
    child,
    output: () =>
      text
        .replace(/\r/g, '')
        .replace(/\x1b\[J/g, '')
        .split('\n')
        .map((line) => line.replace(/^>+/, ''))
        .filter((line) => line.trim() !== ''),
    stop: () => {
      // In REPL mode SIGTERM only interrupts JS: SIGKILL ends it.
      child.kill('SIGKILL');
    },
  };
}
