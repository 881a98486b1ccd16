// Starting and stopping the cloud: a taken port gives one clear line (in-process and through
// `npx tandem cloud`), `tandem provision` writes a config a device really connects with (plain and
// TLS with the pinned CA), and SIGINT stops the command cleanly.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as runCloudCommand } from '../../scripts/commands/cloud.ts';
import { run as runProvision } from '../../scripts/commands/provision.ts';
import { deviceConfigError, type DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { PortInUseError, startCloud } from '../../cloud-stub/server.ts';
import { temporaryDir } from './helpers.ts';

const tandem = join(import.meta.dirname, '..', '..', 'scripts', 'tandem.mjs');
const temp = temporaryDir('tandem-start-');
let blocker: Server;
let takenPort = 0;

// The in-process provision runs must use the SQLite file of their data directory.
const savedDatabaseUrl = process.env.DATABASE_URL;

beforeAll(async () => {
  delete process.env.DATABASE_URL;
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  takenPort = (blocker.address() as { port: number }).port;
});

afterAll(async () => {
  if (savedDatabaseUrl !== undefined) process.env.DATABASE_URL = savedDatabaseUrl;
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
  temp.remove();
});

/** Runs a command in-process (no tsx start-up per call), collecting what it prints. */
async function captured(body: () => Promise<number>): Promise<{ code: number; stdout: string[]; stderr: string[] }> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void stdout.push(String(line)));
  const error = vi.spyOn(console, 'error').mockImplementation((line: unknown) => void stderr.push(String(line)));
  try {
    return { code: await body(), stdout, stderr };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

function connectDevice(config: DeviceConfig, port: number, tls: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`${tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`, {
      clientId: config.deviceId,
      username: config.deviceId,
      password: config.secret,
      reconnectPeriod: 0,
      connectTimeout: 4000,
      protocolVersion: 4,
      ...(tls ? { ca: config.caCert, servername: 'localhost', rejectUnauthorized: true } : {}),
    });
    client.once('connect', () => {
      client.end(true);
      resolve();
    });
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
  });
}

describe('port taken', () => {
  it('startCloud refuses a taken MQTT port with one line naming --mqtt-port and MQTT_URL, and leaves nothing running', async () => {
    const error = await startCloud({ dataDir: temp.dir, mqttPort: takenPort, mqttHost: '127.0.0.1', httpPort: 0, log: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PortInUseError);
    const message = (error as Error).message;
    expect(message).toBe(
      `MQTT port ${takenPort} is already in use. Choose another with --mqtt-port N, or use an external broker with MQTT_URL=mqtt://host:port.`,
    );
    expect(message).not.toContain('\n');
  });

  it('startCloud refuses a taken HTTP port naming --http-port', async () => {
    const error = await startCloud({ dataDir: temp.dir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: takenPort, httpHost: '127.0.0.1', log: () => {} }).catch(
      (e: unknown) => e,
    );
    expect((error as Error).message).toBe(`HTTP port ${takenPort} is already in use. Choose another with --http-port N.`);
  });

  it('`tandem cloud` prints that one line on stderr and exits with 2', () => {
    const result = spawnSync(process.execPath, [tandem, 'cloud', '--mqtt-port', String(takenPort), '--host', '127.0.0.1', '--http-port', '0', '--data-dir', temp.dir], {
      encoding: 'utf8',
      timeout: 15_000,
      env: { ...process.env, MQTT_URL: '', DATABASE_URL: '' },
    });
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toEqual([`tandem cloud: MQTT port ${takenPort} is already in use. Choose another with --mqtt-port N, or use an external broker with MQTT_URL=mqtt://host:port.`]);
  });

  it('`tandem cloud` refuses a bad flag value with one line', async () => {
    const result = await captured(() => runCloudCommand(['--mqtt-port', '99999']));
    expect(result.code).toBe(2);
    expect(result.stderr).toEqual(['tandem cloud: --mqtt-port must be from 0 to 65535, got 99999.']);
  });
});

describe('provision, then connect with the written config', () => {
  it('plain MQTT and mqtts with the pinned local CA; a client without the CA is refused', async () => {
    const dataDir = join(temp.dir, 'cloud');
    const plainPath = join(temp.dir, 'dev-plain.json');
    const tlsPath = join(temp.dir, 'dev-tls.json');
    const provision = (...args: string[]) => captured(() => runProvision([...args, '--data-dir', dataDir]));
    const plain = await provision('dev-plain', '--out', plainPath);
    expect(plain.code, plain.stderr.join('\n')).toBe(0);
    expect(plain.stdout.join('\n')).toContain("registered 'dev-plain'");
    const secure = await provision('dev-tls', '--tls', '--port', '8883', '--out', tlsPath);
    expect(secure.code, secure.stderr.join('\n')).toBe(0);

    const plainConfig = JSON.parse(readFileSync(plainPath, 'utf8')) as DeviceConfig;
    const tlsConfig = JSON.parse(readFileSync(tlsPath, 'utf8')) as DeviceConfig;
    expect(deviceConfigError(plainConfig)).toBeNull();
    expect(deviceConfigError(tlsConfig)).toBeNull();
    expect(tlsConfig).toMatchObject({ tls: true, mqttPort: 8883 });
    expect(tlsConfig.caCert).toMatch(/^-----BEGIN CERTIFICATE-----/);

    const cloud = await startCloud({ dataDir, mqttPort: 0, tlsPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {} });
    try {
      expect(readFileSync(cloud.caCertPath!, 'utf8')).toBe(tlsConfig.caCert);
      await connectDevice(plainConfig, cloud.mqttPort!, false);
      await connectDevice(tlsConfig, cloud.mqttsPort!, true);
      await expect(connectDevice({ ...tlsConfig, caCert: undefined }, cloud.mqttsPort!, true)).rejects.toThrow(/self.signed|unable to verify|certificate/i);
      // The wrong device secret over TLS is still refused by authentication.
      await expect(connectDevice({ ...tlsConfig, secret: plainConfig.secret }, cloud.mqttsPort!, true)).rejects.toThrow(/Bad username or password/);
      // Already provisioned: one line, exit 2; --rotate issues a new secret that works, the old one stops.
      const again = await provision('dev-plain', '--out', plainPath);
      expect(again.code).toBe(2);
      expect(again.stderr).toHaveLength(1);
      const rotated = await provision('dev-plain', '--rotate', '--out', plainPath);
      expect(rotated.code, rotated.stderr.join('\n')).toBe(0);
      const rotatedConfig = JSON.parse(readFileSync(plainPath, 'utf8')) as DeviceConfig;
      await connectDevice(rotatedConfig, cloud.mqttPort!, false);
      await expect(connectDevice(plainConfig, cloud.mqttPort!, false)).rejects.toThrow(/Bad username or password/);
    } finally {
      await cloud.stop();
    }
  });
});

describe('provision: the durable event cache options', () => {
  it('writes 128 KiB by default, what --event-flash and --event-flush-ms say, and refuses bad values in one line', async () => {
    const dataDir = join(temp.dir, 'cloud-flash');
    const provision = (...args: string[]) => captured(() => runProvision([...args, '--data-dir', dataDir]));
    const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as DeviceConfig;
    const standard = await provision('dev-flash-a', '--out', join(temp.dir, 'a.json'));
    expect(standard.code, standard.stderr.join('\n')).toBe(0);
    expect(standard.stdout.join('\n')).toContain('durable event cache on, 128 KiB of flash');
    expect(read(join(temp.dir, 'a.json')).eventFlashBytes).toBe(131072);
    const off = await provision('dev-flash-b', '--event-flash', '0', '--out', join(temp.dir, 'b.json'));
    expect(off.code, off.stderr.join('\n')).toBe(0);
    expect(off.stdout.join('\n')).toContain('durable event cache off');
    expect(read(join(temp.dir, 'b.json')).eventFlashBytes).toBe(0);
    const through = await provision('dev-flash-c', '--event-flash', '64', '--event-flush-ms', '0', '--out', join(temp.dir, 'c.json'));
    expect(through.code, through.stderr.join('\n')).toBe(0);
    expect(read(join(temp.dir, 'c.json'))).toMatchObject({ eventFlashBytes: 65536, eventFlashFlushMs: 0 });
    for (const bad of [['--event-flash', '6'], ['--event-flash', '300'], ['--event-flash', 'big'], ['--event-flush-ms', '700000']]) {
      const refused = await provision('dev-flash-x', ...bad, '--out', join(temp.dir, 'x.json'));
      expect(refused.code, bad.join(' ')).toBe(2);
      expect(refused.stderr).toHaveLength(1);
      expect(refused.stderr[0]).toMatch(/^tandem provision: --event-(flash|flush-ms) /);
    }
    expect(existsSync(join(temp.dir, 'x.json'))).toBe(false);
    // The device checks the file the same way.
    const base = read(join(temp.dir, 'a.json'));
    expect(deviceConfigError({ ...base, eventFlashBytes: 4096 })).toMatch(/eventFlashBytes/);
    expect(deviceConfigError({ ...base, eventFlashBytes: 10000 })).toMatch(/eventFlashBytes/);
    expect(deviceConfigError({ ...base, eventFlashFlushMs: -1 })).toMatch(/eventFlashFlushMs/);
    expect(deviceConfigError({ ...base, eventFlashBytes: 262144, eventFlashFlushMs: 0 })).toBeNull();
  });
});

describe('`tandem cloud` lifecycle', () => {
  it('prints its addresses and the admin token once, and stops cleanly on SIGINT', async () => {
    const dataDir = join(temp.dir, 'lifecycle');
    const child = spawn(process.execPath, [tandem, 'cloud', '--mqtt-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], {
      env: { ...process.env, MQTT_URL: '', DATABASE_URL: '' },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const started = Date.now();
    while (!out.includes('ready in') && Date.now() - started < 15_000) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(out).toMatch(/mqtt: embedded broker on mqtt:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/http: API on http:\/\/127\.0\.0\.1:\d+\/api/);
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect(out).toContain(`admin token (shown once`);
    expect(out).toContain(token);

    const httpPort = Number(/http:\/\/127\.0\.0\.1:(\d+)\/api/.exec(out)![1]);
    const response = await fetch(`http://127.0.0.1:${httpPort}/api/devices`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('cloud: stopped');
  });
});
