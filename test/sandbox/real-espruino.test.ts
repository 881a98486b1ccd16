// The same bundle in a real Espruino Linux binary, when the user has one (ESPRUINO_BIN). Without
// it these tests report themselves skipped. Parity checks of the sandbox: real-espruino-parity.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RealEspruino, cleanConsoleLine, runEspruinoCode, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildBundle, closedPort, startServer, temporaryDir, waitFor, type TestServer } from './helpers.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const binaryPath = process.env.ESPRUINO_BIN ?? '';
const haveBinary = binaryPath !== '';

let probeBundlePath = '';
let mainBundlePath = '';
let server: TestServer | undefined;
let device: RealEspruino | undefined;

/**
 * The platform proof of the foundation issue, kept apart from firmware/main.ts (whose body later
 * issues replace): banner, config from Storage, a boot counter in Storage, a repeating timer and a
 * TCP connection through the HAL, with a retry timer.
 */
const bootProbe = `
  import { EspruinoClock } from '${join(repoRoot, 'firmware/hal/espruino/clock.ts')}';
  import { readDeviceConfig } from '${join(repoRoot, 'firmware/hal/espruino/config.ts')}';
  import { EspruinoLog } from '${join(repoRoot, 'firmware/hal/espruino/log.ts')}';
  import { EspruinoNetwork } from '${join(repoRoot, 'firmware/hal/espruino/network.ts')}';
  import { startNetwork } from '${join(repoRoot, 'firmware/hal/espruino/wifi.ts')}';
  import type { DeviceConfig } from '${join(repoRoot, 'firmware/protocol/device-config.ts')}';
  const log = new EspruinoLog();
  const clock = new EspruinoClock();
  const storage = require('Storage');
  let ticks = 0;
  function connect(config: DeviceConfig, network: EspruinoNetwork): void {
    network.connect(config.mqttHost, config.mqttPort, false, {
      onConnect: function () { log.info('tcp: connected to ' + config.mqttHost + ':' + config.mqttPort); },
      onData: function (bytes: string) { log.info('tcp: received ' + bytes.length + ' bytes'); },
      onClose: function (hadError: boolean) {
        log.info(hadError ? 'tcp: failed' : 'tcp: closed');
        setTimeout(function () { connect(config, network); }, 500);
      },
    });
  }
  log.info('probe on Espruino ' + process.version + ' at ' + clock.nowMs() + ' ms');
  const result = readDeviceConfig(storage);
  const config = result.config;
  if (config === null) {
    log.error('config: ' + result.error);
  } else {
    const boots = (parseInt(storage.read('probe.boots') || '0', 10) || 0) + 1;
    storage.write('probe.boots', String(boots));
    log.info('device ' + config.deviceId + ', boot #' + boots);
    setInterval(function () {
      ticks++;
      const memory = process.memory();
      log.info('tick ' + ticks + ', ' + memory.free + ' of ' + memory.total + ' JsVars free');
    }, 1000);
    const network = new EspruinoNetwork(undefined);
    startNetwork(config, log, function (error: string | null) {
      if (error === null) connect(config, network);
    });
  }`;

beforeAll(async () => {
  if (!haveBinary) return;
  probeBundlePath = await buildBundle(bootProbe);
  mainBundlePath = await buildBundle();
});

afterEach(async () => {
  await device?.stop();
  device = undefined;
  await server?.close();
  server = undefined;
});

describe('console lines of a real interpreter', () => {
  it('drops carriage returns, prompts and erase sequences', () => {
    expect(cleanConsoleLine('>Tandem firmware 0.1.0\r')).toBe('Tandem firmware 0.1.0');
    expect(cleanConsoleLine('\x1b[J>\r')).toBeUndefined();
    expect(cleanConsoleLine('\x08\x08tcp: connected\r')).toBe('tcp: connected');
  });
});

describe(`real Espruino binary (ESPRUINO_BIN=${binaryPath || 'unset'})`, () => {
  it.skipIf(!haveBinary)('stores files with -e code and reads them back in a later run', async () => {
    const workDir = temporaryDir('espruino');
    const written = await runEspruinoCode(binaryPath, workDir, 'require("Storage").write("probe","\\xff\\x00ok");print("W");quit();');
    expect(written.lines).toContain('W');
    const read = await runEspruinoCode(binaryPath, workDir, 'print(JSON.stringify(require("Storage").read("probe")));quit();');
    expect(read.lines).toContain('"\\u00FF\\u0000ok"');
  });

  it.skipIf(!haveBinary)('runs the HAL boot probe: banner, config, boot counter, timer, TCP; a refusal is retried', async () => {
    const workDir = temporaryDir('espruino');
    server = await startServer((socket) => socket.write('hi'));
    await writeDeviceConfigWithBinary(binaryPath, workDir, { deviceId: 'emu-real', secret: 's', mqttHost: '127.0.0.1', mqttPort: server.port, tls: false });
    const lines: string[] = [];
    device = new RealEspruino({ binaryPath, workDir, bundlePath: probeBundlePath, onConsoleLine: (line) => lines.push(line) });
    void device.start();
    await waitFor(() => lines.includes('tcp: received 2 bytes'), 'the probe to connect and receive', 15_000);
    expect(lines.some((line) => line.startsWith('probe on Espruino 2v')), lines.join('|')).toBe(true);
    expect(lines).toContain('device emu-real, boot #1');
    expect(lines).toContain('network: no Wifi module, using the host network');
    expect(lines, lines.join('|')).toContain(`tcp: connected to 127.0.0.1:${server.port}`);
    await waitFor(() => lines.some((line) => /^tick 2, \d+ of \d+ JsVars free$/.test(line)), 'the timer', 10_000);
    await device.stop();

    // Second run on the same espruino.flash, against a port nobody listens on: Linux builds throw
    // from connect(), which the HAL reports as a failed connection; the retry timer tries again.
    const port = await closedPort();
    await writeDeviceConfigWithBinary(binaryPath, workDir, { deviceId: 'emu-real', secret: 's', mqttHost: '127.0.0.1', mqttPort: port, tls: false });
    const again: string[] = [];
    device = new RealEspruino({ binaryPath, workDir, bundlePath: probeBundlePath, onConsoleLine: (line) => again.push(line) });
    void device.start();
    await waitFor(() => again.filter((line) => line === 'tcp: failed').length >= 2, 'the refusal and its retry', 15_000);
    expect(again).toContain('device emu-real, boot #2');
    expect(again.filter((line) => line.startsWith('Uncaught'))).toEqual([]);
  }, 60_000);

  it.skipIf(!haveBinary)('boots firmware/main.ts from Storage, whatever its body: banner, config read, no uncaught error', async () => {
    const workDir = temporaryDir('espruino');
    server = await startServer();
    await writeDeviceConfigWithBinary(binaryPath, workDir, { deviceId: 'emu-real', secret: 's', mqttHost: '127.0.0.1', mqttPort: server.port, tls: false });
    const lines: string[] = [];
    // As a flashed board boots: from .bootcde in Storage (run as a file, the full firmware's source
    // alone would take more JsVars than a 16383-JsVar build has).
    device = new RealEspruino({ binaryPath, workDir, bundlePath: mainBundlePath, bootFrom: 'storage', onConsoleLine: (line) => lines.push(line) });
    device.install();
    const exited = device.start();
    await waitFor(() => lines.some((line) => line.startsWith('Tandem firmware ')), 'the banner', 15_000);
    // Give it a few seconds of timers and sockets.
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('running'), 3000))]);
    expect(code, `the interpreter exited: ${lines.slice(-8).join(' | ')}`).toBe('running');
    expect(lines.filter((line) => line.startsWith('Uncaught') || line.startsWith('ERROR config'))).toEqual([]);
  }, 30_000);
});
