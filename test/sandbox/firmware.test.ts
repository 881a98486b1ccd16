// The built firmware bundle (firmware/main.ts through the build's gate) boots in the sandbox:
// banner, config from Storage, boot counter, repeating timer, TCP connection and its retry.
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { writeDeviceConfigToFlash } from '../../hal-mocks/espruino-sandbox/device-flash.ts';
import { EspruinoSandbox, type EspruinoSandboxOptions } from '../../hal-mocks/espruino-sandbox/sandbox.ts';
import { VirtualScheduler } from '../../hal-mocks/espruino-sandbox/scheduler.ts';
import { EspruinoStorage } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { buildBundle, closedPort, startServer, temporaryDir, waitFor, type TestServer } from './helpers.ts';

const geometry = { pageBytes: 4096, pageCount: 16 };
let bundlePath = '';
let server: TestServer | undefined;
let sandbox: EspruinoSandbox | undefined;

beforeAll(async () => {
  bundlePath = await buildBundle();
});

afterEach(async () => {
  sandbox?.stop();
  sandbox = undefined;
  await server?.close();
  server = undefined;
});

function config(port: number, extra: Partial<DeviceConfig> = {}): DeviceConfig {
  return { deviceId: 'emu-test', secret: 's3cret', mqttHost: '127.0.0.1', mqttPort: port, tls: false, ...extra };
}

function bootDevice(deviceConfig: DeviceConfig | undefined, options: EspruinoSandboxOptions = {}): { lines: string[]; scheduler: VirtualScheduler; imagePath: string } {
  const imagePath = join(temporaryDir('firmware'), 'device.flash');
  if (deviceConfig !== undefined) writeDeviceConfigToFlash(imagePath, deviceConfig, geometry);
  const lines: string[] = [];
  const scheduler = new VirtualScheduler();
  sandbox = new EspruinoSandbox({
    bundlePath,
    flashImagePath: imagePath,
    flashPageBytes: geometry.pageBytes,
    flashPageCount: geometry.pageCount,
    scheduler,
    onConsoleLine: (line) => lines.push(line),
    ...options,
  });
  sandbox.boot();
  return { lines, scheduler, imagePath };
}

describe('firmware bundle in the sandbox', () => {
  it('boots: banner, config, boot counter, TCP connection to the configured broker, heartbeat timer', async () => {
    server = await startServer((socket) => socket.write('hi'));
    const { lines, scheduler } = bootDevice(config(server.port));
    expect(lines[0]).toBe('Tandem firmware 0.1.0 on Espruino 2v29');
    expect(lines).toContain('device emu-test, boot #1');
    expect(lines).toContain(`tcp: connecting to 127.0.0.1:${server.port}`);
    await waitFor(() => lines.includes('tcp: received 2 bytes'), 'data from the server');
    expect(lines).toContain(`tcp: connected to 127.0.0.1:${server.port}`);
    expect(server.connections).toHaveLength(1);
    expect(lines.some((line) => line.startsWith('uptime'))).toBe(false);
    scheduler.advance(10_000);
    expect(lines.at(-1)).toMatch(/^uptime 10 s, \d+ of 16383 JsVars free$/);
    scheduler.advance(10_000);
    expect(lines.at(-1)).toMatch(/^uptime 20 s/);
    expect(sandbox!.uncaughtErrors).toEqual([]);
  });

  it('counts boots in Storage across power cycles and restarts from the image file', async () => {
    server = await startServer();
    const { lines, imagePath } = bootDevice(config(server.port));
    sandbox!.powerCycle();
    sandbox!.powerCycle();
    expect(lines.filter((line) => line.startsWith('device emu-test, boot #'))).toEqual(['device emu-test, boot #1', 'device emu-test, boot #2', 'device emu-test, boot #3']);
    expect(sandbox!.storage.read('tandem.boots')).toBe('3');
    sandbox!.stop();
    // A new sandbox object on the same image file is the same device after a restart.
    const again: string[] = [];
    sandbox = new EspruinoSandbox({ bundlePath, flashImagePath: imagePath, flashPageCount: geometry.pageCount, scheduler: new VirtualScheduler(), onConsoleLine: (line) => again.push(line) });
    sandbox.boot();
    expect(again).toContain('device emu-test, boot #4');
  });

  it('retries a refused broker connection after 5 s', async () => {
    const port = await closedPort();
    const { lines, scheduler } = bootDevice(config(port));
    await waitFor(() => lines.some((line) => line.startsWith('tcp: could not connect')), 'the refusal');
    expect(lines.filter((line) => line.startsWith('tcp: connecting'))).toHaveLength(1);
    scheduler.advance(5000);
    expect(lines.filter((line) => line.startsWith('tcp: connecting'))).toHaveLength(2);
  });

  it('loses the broker when the network goes down and reconnects when it is back', async () => {
    server = await startServer();
    const { lines, scheduler } = bootDevice(config(server.port));
    await waitFor(() => lines.includes(`tcp: connected to 127.0.0.1:${server!.port}`), 'the connection');
    sandbox!.setNetworkOnline(false);
    expect(lines.at(-1)).toBe('tcp: could not connect or failed, retrying in 5 s');
    scheduler.advance(5000);
    await waitFor(() => lines.filter((line) => line.startsWith('tcp: could not connect')).length === 2, 'the failed retry');
    sandbox!.setNetworkOnline(true);
    scheduler.advance(5000);
    await waitFor(() => lines.filter((line) => line.startsWith('tcp: connected')).length === 2, 'the reconnection');
    expect(server.connections).toHaveLength(2);
  });

  it('says so when the config is missing or invalid, and does not connect', () => {
    const { lines } = bootDevice(undefined);
    expect(lines).toEqual(['Tandem firmware 0.1.0 on Espruino 2v29', 'ERROR config: no tandem.cfg in Storage: provision the device first']);
    sandbox!.stop();
    // A file the provisioning would refuse, written straight into the flash.
    const imagePath = join(temporaryDir('firmware'), 'device.flash');
    const storage = new EspruinoStorage({ ...geometry, imagePath });
    storage.writeJSON('tandem.cfg', { ...config(1883), mqttPort: 0 });
    storage.close();
    const invalid: string[] = [];
    sandbox = new EspruinoSandbox({ bundlePath, flashImagePath: imagePath, flashPageCount: geometry.pageCount, scheduler: new VirtualScheduler(), onConsoleLine: (line) => invalid.push(line) });
    sandbox.boot();
    expect(invalid.at(-1)).toBe('ERROR config: tandem.cfg: mqttPort must be a whole number from 1 to 65535');
    expect(sandbox.socketCount).toBe(0);
  });

  it('joins WiFi on an ESP32 when the config names an access point', async () => {
    server = await startServer();
    const joined = bootDevice(config(server.port, { wifiSsid: 'lab', wifiPassword: 'pw' }), { wifiAccessPoint: { ssid: 'lab', password: 'pw' } });
    expect(joined.lines.at(-1)).toBe('network: joining WiFi lab');
    joined.scheduler.advance(200);
    expect(joined.lines).toContain('network: WiFi up, ip 127.0.0.1');
    await waitFor(() => joined.lines.includes(`tcp: connected to 127.0.0.1:${server!.port}`), 'the connection');
    sandbox!.stop();
    const wrong = bootDevice(config(server.port, { wifiSsid: 'elsewhere' }), { wifiAccessPoint: { ssid: 'lab' } });
    wrong.scheduler.advance(200);
    expect(wrong.lines.at(-1)).toBe('ERROR network: WiFi elsewhere: no_ap_found');
    sandbox!.stop();
    const linux = bootDevice(config(server.port, { wifiSsid: 'lab' }), { platform: 'linux' });
    expect(linux.lines).toContain('network: no Wifi module, using the host network');
  });
});
