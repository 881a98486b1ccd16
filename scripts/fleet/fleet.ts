// The fleet runner behind `npm start`: the cloud stub (embedded broker, storage, HTTP API and the
// dashboard), a local weather service for the demo RPC route, and N provisioned devices, each
// running dist/firmware.js with its own flash image and credentials over real TCP: in the
// Espruino sandbox, or in a real Espruino binary. The dashboard's fleet controls act on them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createDashboardHandler, type FleetControls, type FleetDeviceView } from '../../cloud-stub/dashboard/serve.ts';
import { loadOrCreateAdminToken, resolveDataDir } from '../../cloud-stub/data-dir.ts';
import { buildDeviceConfig, provisionDevice, writeDeviceConfig } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { deviceConfigError, type DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { EspruinoSandbox, writeDeviceConfigToFlash } from '../../hal-mocks/espruino-sandbox/index.ts';
import { RealEspruino, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { LinkRelay } from './link-relay.ts';
import { startWeatherService, type WeatherService } from './weather-service.ts';

export interface FleetOptions {
  /** How many devices (ids demo-1 .. demo-N). */
  deviceCount: number;
  bundlePath: string;
  /** Data directory of the cloud; the devices' flash images live in its `fleet/` folder. */
  dataDir?: string;
  httpPort?: number;
  httpHost?: string;
  /** Embedded broker port; default 0 (any free port: the devices are told which). */
  mqttPort?: number;
  /** Run the devices in this Espruino Linux binary instead of the sandbox. */
  espruinoBinary?: string;
  /** Progress lines; default console.log. */
  log?: (line: string) => void;
  /** Each device console line, with its id; default: not printed. */
  onDeviceLine?: (deviceId: string, line: string) => void;
  /** How often bytes on the wire are sampled for the monthly projection (default 5000 ms). */
  sampleMs?: number;
}

export interface RunningFleet {
  cloud: RunningCloud;
  /** The dashboard address with the admin token in the URL fragment (never sent to a server log). */
  dashboardUrl: string;
  baseUrl: string;
  controls: FleetControls;
  weather: WeatherService;
  deviceIds: string[];
  stop(): Promise<void>;
}

/** Console lines kept per device for the dashboard. */
const consoleLinesKept = 40;
/** Samples of bytes on the wire kept per device: 5 minutes at the default 5 s. */
const byteSamplesKept = 60;
const secondsPerMonth = 30 * 24 * 3600;
/** The access point the sandbox devices join: a short WiFi join, as on a board. */
const fleetWifiSsid = 'tandem-fleet';

/**
 * The sandbox has no pins; the fleet gives each device a mock button (on D0, as the demo
 * firmware expects without a BTN) and LED (D2), installed in the device's globals right after
 * boot, before the WiFi join lets the application start and look for them.
 */
const mockPinsScript = `(function (g) {
  g.__fleetPins = { button: null, led: 0 };
  g.D0 = 'D0'; g.D2 = 'D2';
  g.setWatch = function (callback) { g.__fleetPins.button = callback; return 1; };
  g.clearWatch = function () { g.__fleetPins.button = null; };
  g.digitalWrite = function (pin, value) { if (pin === 'D2') g.__fleetPins.led = value ? 1 : 0; };
  g.digitalRead = function (pin) { return pin === 'D0' ? 1 : 0; };
})(this)`;

abstract class FleetDevice {
  readonly lines: string[] = [];
  led: boolean | null = null;
  reportIntervalSec: number | null = null;
  private readonly samples: Array<{ ms: number; bytes: number }> = [];

  constructor(
    readonly deviceId: string,
    private readonly onLine: ((deviceId: string, line: string) => void) | undefined,
  ) {}

  abstract readonly runtime: 'sandbox' | 'espruino';
  abstract get running(): boolean;
  abstract get networkOnline(): boolean;
  abstract get boots(): number;
  abstract get bytesSent(): number;
  abstract get bytesReceived(): number;
  abstract readonly buttonAvailable: boolean;
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract setNetworkOnline(online: boolean): void;
  abstract powerCycle(): void;
  abstract pressButton(): boolean;

  /** Keeps the line for the dashboard and notes what the application says it did. */
  consoleLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > consoleLinesKept) this.lines.shift();
    if (line === 'led on' || line === 'led off') this.led = line === 'led on';
    const interval = /^report interval (\d+) s$/.exec(line);
    if (interval !== null) this.reportIntervalSec = Number(interval[1]);
    this.onLine?.(this.deviceId, line);
  }

  /** A new boot says again what it does: until then the dashboard shows unknown, not the last boot's word. */
  forgetApplicationState(): void {
    this.led = null;
    this.reportIntervalSec = null;
  }

  sampleBytes(nowMs: number): void {
    this.samples.push({ ms: nowMs, bytes: this.bytesSent + this.bytesReceived });
    if (this.samples.length > byteSamplesKept) this.samples.shift();
  }

  /** Bytes per 30 days at the rate seen over the kept samples (at least 30 s of them, so the connect burst does not dominate). */
  projectedBytesPerMonth(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (first === undefined || last === undefined || last.ms - first.ms < 30_000) return null;
    return Math.round(((last.bytes - first.bytes) / (last.ms - first.ms)) * 1000 * secondsPerMonth);
  }

  view(): FleetDeviceView {
    return {
      deviceId: this.deviceId,
      runtime: this.runtime,
      running: this.running,
      networkOnline: this.networkOnline,
      boots: this.boots,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      projectedBytesPerMonth: this.projectedBytesPerMonth(),
      led: this.led,
      reportIntervalSec: this.reportIntervalSec,
      buttonAvailable: this.buttonAvailable,
      console: this.lines.slice(),
    };
  }
}

class SandboxDevice extends FleetDevice {
  readonly runtime = 'sandbox' as const;
  readonly buttonAvailable = true;
  private readonly sandbox: EspruinoSandbox;

  constructor(deviceId: string, bundlePath: string, imagePath: string, onLine: FleetOptions['onDeviceLine']) {
    super(deviceId, onLine);
    this.sandbox = new EspruinoSandbox({
      bundlePath,
      flashImagePath: imagePath,
      onConsoleLine: (line) => this.consoleLine(line),
      wifiAccessPoint: { ssid: fleetWifiSsid },
    });
  }

  get running(): boolean {
    return this.sandbox.state === 'running';
  }
  get networkOnline(): boolean {
    return this.sandbox.networkOnline;
  }
  get boots(): number {
    return this.sandbox.boots;
  }
  get bytesSent(): number {
    return this.sandbox.bytesSent;
  }
  get bytesReceived(): number {
    return this.sandbox.bytesReceived;
  }

  private bootWithPins(): void {
    this.sandbox.boot();
    if (this.sandbox.state === 'running') this.sandbox.evaluate(mockPinsScript);
  }

  async start(): Promise<void> {
    this.bootWithPins();
  }

  async stop(): Promise<void> {
    this.sandbox.stop();
  }

  setNetworkOnline(online: boolean): void {
    this.consoleLine(`-- fleet: network ${online ? 'back online' : 'taken offline'} --`);
    this.sandbox.setNetworkOnline(online);
  }

  powerCycle(): void {
    this.consoleLine('-- fleet: power cycle --');
    this.forgetApplicationState();
    this.sandbox.stop();
    this.bootWithPins();
  }

  pressButton(): boolean {
    if (this.sandbox.state !== 'running') return false;
    this.consoleLine('-- fleet: button pressed --');
    try {
      this.sandbox.evaluate('(function (p) { if (p.button) p.button({ state: false, time: getTime() }); })(__fleetPins)');
    } catch (error) {
      this.consoleLine(`Uncaught ${(error as Error).message}`);
    }
    return true;
  }
}

class RealEspruinoDevice extends FleetDevice {
  readonly runtime = 'espruino' as const;
  readonly buttonAvailable = false;
  private interpreter: RealEspruino | undefined;
  private bootCount = 0;
  private alive = false;

  constructor(
    deviceId: string,
    private readonly binary: string,
    private readonly workDir: string,
    private readonly bundlePath: string,
    private readonly relay: LinkRelay,
    onLine: FleetOptions['onDeviceLine'],
  ) {
    super(deviceId, onLine);
  }

  get running(): boolean {
    return this.alive;
  }
  get networkOnline(): boolean {
    return this.relay.networkOnline;
  }
  get boots(): number {
    return this.bootCount;
  }
  get bytesSent(): number {
    return this.relay.bytesSent;
  }
  get bytesReceived(): number {
    return this.relay.bytesReceived;
  }

  /** Stores the bundle as the interpreter's boot code (.bootcde), as flashing a board does. */
  install(): void {
    new RealEspruino({ binaryPath: this.binary, workDir: this.workDir, bundlePath: this.bundlePath, bootFrom: 'storage' }).install();
  }

  async start(): Promise<void> {
    // Booting from Storage, as a flashed board does: the code stays in flash instead of taking
    // JsVars (run as a file, the bundle does not fit in the interpreter's memory).
    const interpreter = new RealEspruino({ binaryPath: this.binary, workDir: this.workDir, bundlePath: this.bundlePath, bootFrom: 'storage', onConsoleLine: (line) => this.consoleLine(line) });
    this.interpreter = interpreter;
    this.bootCount++;
    this.alive = true;
    void interpreter.start().then((code) => {
      if (this.interpreter === interpreter) {
        this.alive = false;
        this.consoleLine(`-- the interpreter exited with code ${code} --`);
      }
    });
  }

  async stop(): Promise<void> {
    const interpreter = this.interpreter;
    this.interpreter = undefined;
    this.alive = false;
    await interpreter?.stop();
  }

  setNetworkOnline(online: boolean): void {
    this.consoleLine(`-- fleet: network ${online ? 'back online' : 'taken offline'} --`);
    this.relay.setNetworkOnline(online);
  }

  powerCycle(): void {
    this.consoleLine('-- fleet: power cycle --');
    this.forgetApplicationState();
    void this.stop().then(() => this.start());
  }

  pressButton(): boolean {
    return false;
  }
}

/** The device's config from an earlier run when it still matches, so its secret stays valid. */
function readSavedConfig(path: string): DeviceConfig | null {
  if (!existsSync(path)) return null;
  try {
    const value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return deviceConfigError(value) === null ? (value as DeviceConfig) : null;
  } catch {
    return null;
  }
}

export async function startFleet(options: FleetOptions): Promise<RunningFleet> {
  const log = options.log ?? ((line: string) => console.log(line));
  const dataDir = options.dataDir !== undefined ? resolve(options.dataDir) : resolveDataDir();
  const fleetDir = join(dataDir, 'fleet');
  // Absolute: a real interpreter runs in the device's own folder.
  const bundlePath = resolve(options.bundlePath);
  mkdirSync(fleetDir, { recursive: true, mode: 0o700 });
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`stop: ${(error as Error).message}`);
      }
    }
  };

  const devices = new Map<string, FleetDevice>();
  const controls: FleetControls = {
    devices: () => [...devices.values()].map((device) => device.view()),
    setNetworkOnline(deviceId, online) {
      const device = devices.get(deviceId);
      if (device === undefined) return false;
      device.setNetworkOnline(online);
      return true;
    },
    powerCycle(deviceId) {
      const device = devices.get(deviceId);
      if (device === undefined) return false;
      device.powerCycle();
      return true;
    },
    pressButton(deviceId) {
      return devices.get(deviceId)?.pressButton() ?? false;
    },
  };

  try {
    log('[2/5] starting the weather service for the demo RPC route ...');
    const weather = await startWeatherService();
    cleanups.push(() => weather.close());
    const rpcRoutesPath = join(fleetDir, 'rpc-routes.json');
    // The demo route reaches a service on this machine, so it must say allowPrivate explicitly.
    const routes = {
      routes: {
        weather: { url: `http://127.0.0.1:${weather.port}/weather?city={city}`, method: 'GET', timeoutMs: 3000, maxResponseBytes: 1024, allowPrivate: true },
      },
    };
    writeFileSync(rpcRoutesPath, JSON.stringify(routes, null, 2) + '\n');

    log('[3/5] starting the cloud (embedded broker, storage, HTTP API, dashboard) ...');
    const admin = loadOrCreateAdminToken(dataDir);
    const cloud = await startCloud({
      dataDir,
      mqttPort: options.mqttPort ?? 0,
      mqttHost: '127.0.0.1',
      httpPort: options.httpPort ?? 8080,
      httpHost: options.httpHost ?? '127.0.0.1',
      rpcRoutesPath,
      adminToken: admin.token,
      httpExtension: createDashboardHandler({ adminToken: admin.token, fleet: controls }),
      log: (line) => log(`      cloud: ${line}`),
    });
    cleanups.push(() => cloud.stop());
    if (cloud.mqttPort === null) throw new Error('the fleet needs the embedded broker');
    const mqttPort = cloud.mqttPort;

    const deviceIds: string[] = [];
    for (let n = 1; n <= options.deviceCount; n++) deviceIds.push(`demo-${n}`);
    log(`[4/5] provisioning ${deviceIds.length} device(s) ...`);
    const configs = new Map<string, DeviceConfig>();
    for (const deviceId of deviceIds) {
      const configPath = join(fleetDir, deviceId, 'device-config.json');
      const saved = readSavedConfig(configPath);
      let secret: string;
      if (saved !== null && (await cloud.context.repository.getDevice(deviceId)) !== null) {
        secret = saved.secret;
        log(`      ${deviceId}: already provisioned (config ${configPath})`);
      } else {
        const outcome = await provisionDevice(cloud.context.repository, deviceId, { rotate: true });
        if (outcome.outcome !== 'created' && outcome.outcome !== 'rotated') throw new Error(`provisioning ${deviceId}: ${outcome.outcome}`);
        secret = outcome.secret;
        log(`      ${deviceId}: provisioned (${outcome.outcome === 'created' ? 'new' : 'new secret'}), config ${configPath}`);
      }
      configs.set(deviceId, { deviceId, secret, mqttHost: '127.0.0.1', mqttPort, tls: false });
    }

    const binary = options.espruinoBinary;
    log(`[5/5] booting ${deviceIds.length} device(s) in ${binary === undefined ? 'the Espruino sandbox' : binary} ...`);
    for (const deviceId of deviceIds) {
      const base = configs.get(deviceId)!;
      const deviceDir = join(fleetDir, deviceId);
      mkdirSync(deviceDir, { recursive: true, mode: 0o700 });
      let device: FleetDevice;
      if (binary === undefined) {
        const config = buildDeviceConfig({ ...base, wifiSsid: fleetWifiSsid });
        writeDeviceConfig(join(deviceDir, 'device-config.json'), config);
        const imagePath = join(deviceDir, 'espruino.flash');
        writeDeviceConfigToFlash(imagePath, config);
        device = new SandboxDevice(deviceId, bundlePath, imagePath, options.onDeviceLine);
      } else {
        // The real interpreter reaches the broker through a relay that counts bytes and can cut it.
        const relay = new LinkRelay('127.0.0.1', mqttPort);
        await relay.listen();
        cleanups.push(() => relay.close());
        writeDeviceConfig(join(deviceDir, 'device-config.json'), buildDeviceConfig(base));
        await writeDeviceConfigWithBinary(binary, deviceDir, buildDeviceConfig({ ...base, mqttPort: relay.port }));
        const real = new RealEspruinoDevice(deviceId, binary, deviceDir, bundlePath, relay, options.onDeviceLine);
        real.install();
        device = real;
      }
      devices.set(deviceId, device);
      await device.start();
      cleanups.push(() => device.stop());
      log(`      ${deviceId}: booted (${device.runtime}, flash in ${deviceDir})`);
    }

    const sampleMs = options.sampleMs ?? 5000;
    const sample = (): void => {
      const nowMs = Date.now();
      for (const device of devices.values()) device.sampleBytes(nowMs);
    };
    sample();
    const sampler = setInterval(sample, sampleMs);
    cleanups.push(() => clearInterval(sampler));

    const shownHost = options.httpHost === undefined || options.httpHost === '0.0.0.0' ? '127.0.0.1' : options.httpHost;
    const baseUrl = `http://${shownHost}:${cloud.httpPort}`;
    return {
      cloud,
      baseUrl,
      dashboardUrl: `${baseUrl}/dashboard/#token=${cloud.adminToken}`,
      controls,
      weather,
      deviceIds,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
