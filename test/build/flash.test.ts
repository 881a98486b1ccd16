// `tandem flash`: the dry run writes exactly what the espruino CLI would send, and replaying it on a
// fake Storage yields the bundle in .bootcde and the config in tandem.cfg; bad input fails in one line.
// With a real Espruino Linux binary (ESPRUINO_BIN) the upload is run there too: the program starts
// once, and again at the next boot.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { deviceConfigFileName } from '../../firmware/protocol/device-config.ts';
import { buildFirmware, repoRoot } from '../../scripts/build/build-firmware.ts';
import { run as runFlashCommand } from '../../scripts/commands/flash.ts';

const workDir = mkdtempSync(join(tmpdir(), 'tandem-flash-test-'));
const bundleFile = join(workDir, 'firmware.js');
const config = { deviceId: 'dev-7', secret: 's3cret', mqttHost: '127.0.0.1', mqttPort: 1883, tls: false };
const configFile = join(workDir, 'dev-7.json');

beforeAll(async () => {
  const built = await buildFirmware({ outFile: bundleFile, quiet: true });
  expect(built.ok).toBe(true);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
});
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

async function captured(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void out.push(parts.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void err.push(parts.join(' ')));
  try {
    return { code: await runFlashCommand(args), out, err };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

/**
 * Runs an upload script against a fake Espruino Storage with flash semantics: write(name, data, 0,
 * size) creates a file of `size` bytes, later writes fill it at their offsets.
 */
function replayUpload(script: string): { files: Map<string, string>; loaded: string[] } {
  const files = new Map<string, string>();
  const sizes = new Map<string, number>();
  const loaded: string[] = [];
  const storage = {
    write(name: string, data: string, offset = 0, size?: number) {
      if (offset === 0) {
        sizes.set(name, size ?? data.length);
        files.set(name, '');
      }
      const current = files.get(name);
      if (current === undefined || current.length !== offset) throw new Error(`write to ${name} at ${offset}, file has ${current?.length}`);
      files.set(name, current + data);
      expect(files.get(name)?.length).toBeLessThanOrEqual(sizes.get(name) as number);
    },
  };
  runInNewContext(script, {
    require: (name: string) => {
      if (name !== 'Storage') throw new Error(`unexpected require(${name})`);
      return storage;
    },
    atob: (text: string) => Buffer.from(text, 'base64').toString('latin1'),
    load: (name: string) => loaded.push(name),
  });
  for (const [name, text] of files) expect(text.length, name).toBe(sizes.get(name));
  return { files, loaded };
}

describe('flash --dry-run', () => {
  it('writes the upload: config to tandem.cfg, bundle to .bootcde, then loads it', async () => {
    const out = join(workDir, 'upload.js');
    const result = await captured(['--dry-run', out, '--config', configFile, '--bundle', bundleFile, '--no-build']);
    expect(result.err).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.out.at(-1)).toMatch(/^flash: dry run: wrote .*upload\.js \([\d,]+ bytes\)/);
    const script = readFileSync(out, 'latin1');
    // The config is written before the code that reads it.
    expect(script.indexOf(deviceConfigFileName)).toBeLessThan(script.indexOf('.bootcde'));
    const { files, loaded } = replayUpload(script);
    expect(files.get('.bootcde')).toBe(readFileSync(bundleFile, 'latin1'));
    expect(JSON.parse(files.get(deviceConfigFileName) as string)).toEqual(config);
    expect(loaded).toEqual(['.bootcde']);
  });

  it('without --config uploads only the bundle, and the same inputs give the same bytes', async () => {
    const first = join(workDir, 'no-config-1.js');
    const second = join(workDir, 'no-config-2.js');
    expect((await captured(['--dry-run', first, '--bundle', bundleFile, '--no-build'])).code).toBe(0);
    expect((await captured(['--dry-run', second, '--bundle', bundleFile, '--no-build'])).code).toBe(0);
    expect(readFileSync(first, 'latin1')).toBe(readFileSync(second, 'latin1'));
    const { files } = replayUpload(readFileSync(first, 'latin1'));
    expect([...files.keys()]).toEqual(['.bootcde']);
  });

  it('builds first unless --no-build', async () => {
    const out = join(workDir, 'built.js');
    const rebuilt = join(workDir, 'rebuilt', 'firmware.js');
    const result = await captured(['--dry-run', out, '--bundle', rebuilt]);
    expect(result.code).toBe(0);
    expect(result.out[0]).toMatch(/^build: bundling firmware\/main\.ts/);
    expect(replayUpload(readFileSync(out, 'latin1')).files.get('.bootcde')).toBe(readFileSync(rebuilt, 'latin1'));
  });
});

describe('flash: bad input gives one clear line', () => {
  it('no --port and no --dry-run: exit 2', async () => {
    const result = await captured([]);
    expect(result.code).toBe(2);
    expect(result.err).toEqual(['tandem flash: --port is required (e.g. --port /dev/ttyUSB0), or --dry-run OUT.js to write the upload to a file.']);
  });

  it.each([
    ['not JSON', '{"deviceId": ', /is not JSON/],
    ['a bad device id', JSON.stringify({ ...config, deviceId: 'has space' }), /: deviceId must be 1 to 32 characters/],
    ['a bad port number', JSON.stringify({ ...config, mqttPort: 70000 }), /: mqttPort must be a whole number from 1 to 65535/],
  ])('a config that is %s: exit 2 naming the problem', async (_name, text, message) => {
    const file = join(workDir, 'bad-config.json');
    writeFileSync(file, text);
    const result = await captured(['--port', '/dev/ttyUSB0', '--config', file, '--no-build', '--bundle', bundleFile]);
    expect(result.code).toBe(2);
    expect(result.err).toHaveLength(1);
    expect(result.err[0]).toMatch(message);
    expect(result.out).toEqual([]);
  });

  it('a config file that does not exist, a bad baud rate, a missing bundle', async () => {
    const missing = await captured(['--port', '/dev/ttyUSB0', '--config', join(workDir, 'nope.json'), '--no-build']);
    expect(missing.code).toBe(2);
    expect(missing.err[0]).toMatch(/config file .*nope\.json does not exist/);
    const baud = await captured(['--port', '/dev/ttyUSB0', '--baud', 'fast']);
    expect(baud.code).toBe(2);
    expect(baud.err).toEqual(["tandem flash: --baud takes a whole number, got 'fast'."]);
    const noBundle = await captured(['--port', '/dev/ttyUSB0', '--no-build', '--bundle', join(workDir, 'none.js')]);
    expect(noBundle.code).toBe(1);
    expect(noBundle.err).toEqual([expect.stringMatching(/no bundle at .*none\.js: run `npm run build` first/)]);
  });

  it('a port where no board answers: exit 1 with one line on stderr, within the timeout', async () => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/tandem.ts', 'flash', '--port', '/dev/ttyTANDEM-NONE', '--no-build', '--bundle', bundleFile, '--timeout', '15'], { cwd: repoRoot });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolveExit) => child.on('close', resolveExit));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^tandem flash: no board answered on \/dev\/ttyTANDEM-NONE/);
    expect(stdout).toContain('flash: connecting to /dev/ttyTANDEM-NONE');
  });
});

/** The user's Espruino Linux binary, if any (never part of the repository). */
function espruinoBinary(): string | undefined {
  const path = process.env.ESPRUINO_BIN ?? '';
  return path !== '' && existsSync(path) ? path : undefined;
}

/**
 * Runs the binary in `dir` (its Storage is ./espruino.flash there) until `done(output)` or the
 * timeout, then kills it. Stdin stays an open pipe: at end of input the Linux build reads garbage.
 */
function runEspruino(binary: string, dir: string, args: string[], done: (output: string) => boolean, timeoutMs: number): Promise<string> {
  return new Promise((resolveOutput) => {
    const child = spawn(binary, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let finishing: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('latin1');
      // Give it a moment more after the awaited line, to catch a second start if there is one.
      if (finishing === undefined && done(output)) finishing = setTimeout(() => child.kill('SIGKILL'), 1500);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => {
      clearTimeout(timer);
      if (finishing !== undefined) clearTimeout(finishing);
      resolveOutput(output);
    });
  });
}

describe.skipIf(espruinoBinary() === undefined)('flash: the upload on a real Espruino (ESPRUINO_BIN)', () => {
  it('stores config and program, starts the program once now and again at the next boot', async () => {
    const binary = espruinoBinary() as string;
    const dir = join(workDir, 'real-espruino');
    mkdirSync(dir, { recursive: true });
    // A program of our own, so the check does not depend on what firmware/main.ts prints.
    writeFileSync(
      join(dir, 'main.ts'),
      [
        'declare function require(name: string): { read(file: string): string | undefined };',
        "const text = require('Storage').read('tandem.cfg');",
        "console.log('FLASHTEST started for ' + (text === undefined ? 'nobody' : (JSON.parse(text) as { deviceId: string }).deviceId));",
        '',
      ].join('\n'),
    );
    const program = join(dir, 'program.js');
    expect((await buildFirmware({ entry: join(dir, 'main.ts'), outFile: program, quiet: true })).ok).toBe(true);
    const upload = join(dir, 'upload.js');
    expect((await captured(['--dry-run', upload, '--config', configFile, '--bundle', program, '--no-build'])).code).toBe(0);

    const started = 'FLASHTEST started for dev-7';
    const first = await runEspruino(binary, dir, [upload], (output) => output.includes(started), 8000);
    expect(first.split(started).length - 1, first).toBe(1);

    const check = 'print("CFG:"+btoa(require("Storage").read("tandem.cfg")));print("APP:"+btoa(require("Storage").read(".bootcde")));';
    const second = await runEspruino(binary, dir, ['-e', check], (output) => /APP:[A-Za-z0-9+/=]+\r?\n/.test(output), 8000);
    expect(second.split(started).length - 1, second).toBe(1);
    const field = (name: string) => Buffer.from((new RegExp(`${name}:([A-Za-z0-9+/=]+)`).exec(second) ?? ['', ''])[1] as string, 'base64').toString('latin1');
    expect(JSON.parse(field('CFG'))).toEqual(config);
    expect(field('APP')).toBe(readFileSync(program, 'latin1'));
  });
});
