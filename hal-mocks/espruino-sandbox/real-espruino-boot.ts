// Runs a bundle in a real Espruino Linux binary the way a board runs it after `tandem flash`: as
// boot code stored in its Storage (.bootcde), executed from flash. Running the bundle as a file
// instead makes Espruino hold the whole source text in JsVars, which a 16383-JsVar (ESP32-format)
// build cannot spare for the full firmware.
import { spawn, type ChildProcess } from 'node:child_process';
import { runEspruinoCode } from './real-espruino.ts';

/** Bytes of bundle sent per interpreter run: small enough to decode in a few JsVars. */
const bootCodeChunkBytes = 4096;

/** Writes `code` into ./espruino.flash of `workDir` as .bootcde, a chunk per interpreter run. */
export async function installBootCode(binaryPath: string, workDir: string, code: string): Promise<void> {
  for (let offset = 0; offset < code.length; offset += bootCodeChunkBytes) {
    const encoded = Buffer.from(code.slice(offset, offset + bootCodeChunkBytes), 'latin1').toString('base64');
    // The first write preallocates the whole file; later ones fill it at their offset.
    const placement = offset === 0 ? `,0,${code.length}` : `,${offset}`;
    const result = await runEspruinoCode(binaryPath, workDir, `require("Storage").write(".bootcde",atob(${JSON.stringify(encoded)})${placement});print("CHUNK-WRITTEN");quit();`, 20_000);
    if (!result.lines.some((line) => line.includes('CHUNK-WRITTEN'))) {
      throw new Error(`Espruino at ${binaryPath} did not store boot code at offset ${offset} (exit ${result.exitCode}): ${result.lines.slice(-3).join(' | ')}`);
    }
  }
}

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
