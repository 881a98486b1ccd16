// `tandem start` as a user runs it: bad flags and taken ports give one line with the fix (before
// any build), and a real run prints its progress and the dashboard address, serves the dashboard
// and the fleet controls, gets every device connected, and stops cleanly on Ctrl-C (SIGINT).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { run as runStart } from '../../scripts/commands/start.ts';
import { fleetBundle } from '../dashboard/helpers.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cleanups: Array<() => void> = [];

afterAll(() => {
  for (const cleanup of cleanups) cleanup();
});

interface Run {
  code: Promise<number>;
  output(): string;
  signal(name: NodeJS.Signals): void;
}

function tandem(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'scripts', 'tandem.ts'), 'start', ...args], { cwd: repoRoot, env: { ...process.env, ESPRUINO_BIN: '' } });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  cleanups.push(() => child.kill('SIGKILL'));
  return {
    code: new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal === null ? 0 : 128)))),
    output: () => text,
    signal: (name) => child.kill(name),
  };
}

/** Runs the command in this process, returning its exit code and what it printed. */
async function startInProcess(args: string[]): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const error = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void lines.push(String(line)));
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
  try {
    return { code: await runStart(args), lines };
  } finally {
    error.mockRestore();
    log.mockRestore();
  }
}

async function waitFor<T>(read: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('tandem start', () => {
  it('answers bad flags with one line naming the fix', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--devices', '0'], /^tandem start: --devices must be from 1 to 50, got 0\.$/],
      [['--devices', 'many'], /^tandem start: --devices takes a whole number, got 'many'\.$/],
      [['--frobnicate'], /^tandem start: Unknown option '--frobnicate'\. Run `npx tandem start --help`\.$/],
      [['--http-port', '70000'], /^tandem start: --http-port must be from 0 to 65535, got 70000\.$/],
      [['--espruino', '/no/such/espruino'], /^tandem start: no Espruino binary at \/no\/such\/espruino\. Pass --espruino PATH/],
      [['--bundle', '/no/such/firmware.js'], /^tandem start: no firmware bundle at \/no\/such\/firmware\.js\. Build one with/],
    ];
    const saved = process.env.ESPRUINO_BIN;
    delete process.env.ESPRUINO_BIN;
    try {
      for (const [args, expected] of cases) {
        const { code, lines } = await startInProcess(args);
        expect(code).toBe(2);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(expected);
      }
    } finally {
      if (saved !== undefined) process.env.ESPRUINO_BIN = saved;
    }
  });

  it('says which port is taken and how to pick another, before building anything', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const started = Date.now();
      const http = await startInProcess(['--http-port', String(port)]);
      const mqtt = await startInProcess(['--http-port', '0', '--mqtt-port', String(port)]);
      expect(http).toEqual({ code: 2, lines: [`tandem start: HTTP port ${port} is already in use. Choose another with --http-port N (0 picks a free one).`] });
      expect(mqtt).toEqual({ code: 2, lines: [`tandem start: MQTT port ${port} is already in use. Choose another with --mqtt-port N, or leave it out to pick a free one.`] });
      // No build ran (a build alone takes about ten seconds).
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      blocker.close();
    }
  });

  it('runs the fleet, serves the dashboard and stops cleanly on Ctrl-C', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-start-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const bundle = await fleetBundle();
    const run = tandem(['--devices', '2', '--http-port', '0', '--data-dir', dataDir, '--bundle', bundle, '--quiet']);
    const url = await waitFor(() => /Dashboard: (http:\/\/\S+)/.exec(run.output())?.[1], 'the dashboard address', 20_000);
    const output = run.output();
    for (const step of ['[1/5]', '[2/5]', '[3/5]', '[4/5] provisioning 2 device(s)', '[5/5] booting 2 device(s) in the Espruino sandbox', 'demo-1: provisioned', 'demo-2: booted']) {
      expect(output).toContain(step);
    }
    const parsed = new URL(url);
    const token = new URLSearchParams(parsed.hash.slice(1)).get('token')!;
    expect(token.length).toBeGreaterThan(10);
    const base = `${parsed.protocol}//${parsed.host}`;

    const page = await fetch(`${base}/dashboard/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>Tandem fleet</title>');
    // The fleet controls need the token, like the API.
    expect((await fetch(`${base}/fleet/devices`)).status).toBe(401);
    const auth = { authorization: `Bearer ${token}` };
    const fleet = (await (await fetch(`${base}/fleet/devices`, { headers: auth })).json()) as { devices: Array<{ deviceId: string; running: boolean; runtime: string }> };
    expect(fleet.devices.map((d) => [d.deviceId, d.running, d.runtime])).toEqual([['demo-1', true, 'sandbox'], ['demo-2', true, 'sandbox']]);
    await waitFor(async () => {
      const devices = (await (await fetch(`${base}/api/devices`, { headers: auth })).json()) as { devices: Array<{ connected: boolean }> };
      return devices.devices.length === 2 && devices.devices.every((d) => d.connected) ? true : undefined;
    }, 'both devices connected', 10_000);

    run.signal('SIGINT');
    expect(await run.code).toBe(0);
    expect(run.output()).toContain('tandem start: stopping (Ctrl-C) ...');
    expect(run.output()).toContain('tandem start: stopped.');
    // Nothing is left listening.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});
