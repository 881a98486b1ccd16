// Shared parts of the sync tests: a cloud with the sync session on an embedded broker and a SQLite
// file, and a device core on PC hardware (real TCP, flash simulator, wall clock).
import { crc32, crc32OfByteString } from '../../firmware/protocol/crc32.ts';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { allTemplates, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { createTemplateRegistry, type Template } from '../../firmware/protocol/template.ts';
import { Device, deviceDefaults, type DeviceApp, type DeviceOptions } from '../../firmware/core/device.ts';
import { FlashSimulator, seededRandom } from '../../hal-mocks/flash-simulator.ts';
import { NodeNetwork } from '../../hal-mocks/node-network.ts';
import type { Network, Socket, SocketHandlers } from '../../firmware/hal/socket.ts';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { syncSessionFactory } from '../../cloud-stub/sync-session.ts';
import { temporaryDir } from '../cloud/helpers.ts';

export { waitFor } from '../cloud/helpers.ts';

export interface TestCloud {
  cloud: RunningCloud;
  logs: string[];
  provision(deviceId: string): Promise<DeviceConfig>;
  close(): Promise<void>;
}

/** `templates`: event templates the cloud knows besides the product's own (allTemplates). */
export async function startTestCloud(options: { mqttPort?: number; dataDir?: string; templates?: Template[] } = {}): Promise<TestCloud> {
  const temp = options.dataDir === undefined ? temporaryDir('tandem-sync-') : null;
  const logs: string[] = [];
  const cloud = await startCloud({
    dataDir: options.dataDir ?? temp!.dir,
    mqttPort: options.mqttPort ?? 0,
    mqttHost: '127.0.0.1',
    httpPort: 0,
    httpHost: '127.0.0.1',
    log: (line) => logs.push(line),
    session: syncSessionFactory({ templates: createTemplateRegistry([...allTemplates(), ...(options.templates ?? [])]), stateTemplates: [demoStateTemplate] }),
  });
  return {
    cloud,
    logs,
    async provision(deviceId: string): Promise<DeviceConfig> {
      const outcome = await provisionDevice(cloud.context.repository, deviceId, { hashCost: 1024 });
      if (outcome.outcome !== 'created') throw new Error(`provision ${deviceId}: ${outcome.outcome}`);
      return { deviceId, secret: outcome.secret, mqttHost: '127.0.0.1', mqttPort: cloud.mqttPort!, tls: false };
    },
    async close() {
      await cloud.stop();
      temp?.remove();
    },
  };
}

export interface TestDevice {
  device: Device;
  flash: FlashSimulator;
  logs: string[];
  messages: { seq: number; body: string }[];
  stateChanges: number[];
}

/** A device core on PC hardware. Pass the same flash to model a reboot. */
export function createTestDevice(config: DeviceConfig, flash?: FlashSimulator, overrides: Partial<DeviceOptions> = {}, network?: Network): TestDevice {
  const logs: string[] = [];
  const messages: { seq: number; body: string }[] = [];
  const stateChanges: number[] = [];
  const random = seededRandom(7);
  const area = flash ?? new FlashSimulator({ sectorCount: 4, seed: 1 });
  const started = Date.now();
  const app: DeviceApp = {
    onMessage: (seq, body) => messages.push({ seq, body }),
    onStateChanged: (keyId) => stateChanges.push(keyId),
  };
  const options: DeviceOptions = { ...deviceDefaults(demoStateTemplate, [telemetryTemplate]), tickMs: 10, mqttBackoffMsMin: 50, mqttBackoffMsMax: 200, ...overrides };
  const device = new Device(
    {
      network: network ?? new NodeNetwork(),
      flash: area,
      clock: { nowMs: () => Date.now() - started, epochMs: () => Date.now() },
      timers: {
        setTimeout: (callback, delayMs) => setTimeout(callback, delayMs) as unknown as number,
        clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
      },
      random: { nextUint32: () => Math.floor(random() * 4294967296) },
      log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(m) },
      crc32,
      crc32OfText: crc32OfByteString,
    },
    config,
    options,
    app,
  );
  return { device, flash: area, logs, messages, stateChanges };
}

/** Reference telemetry values for event i (whole seconds, so they round-trip exactly). */
export function telemetryValues(i: number): [number, number, number, number] {
  return [1_700_000_000_000 + i * 60_000, 20 + (i % 50) / 10, 40 + (i % 7), 3700 - (i % 13)];
}

/** Wraps a Network and counts the bytes the device writes and receives (bytes on the wire). */
export class CountingNetwork implements Network {
  bytesWritten = 0;
  bytesReceived = 0;
  constructor(private readonly inner: Network) {}
  connect(host: string, port: number, secure: boolean, handlers: SocketHandlers): Socket {
    const counter = this;
    const socket = this.inner.connect(host, port, secure, {
      onConnect: () => handlers.onConnect(),
      onData: (bytes) => {
        counter.bytesReceived += bytes.length;
        handlers.onData(bytes);
      },
      onClose: (hadError) => handlers.onClose(hadError),
    });
    return {
      write(data, offset, length) {
        counter.bytesWritten += length;
        return socket.write(data, offset, length);
      },
      close: () => socket.close(),
    };
  }
}
