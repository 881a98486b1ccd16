// Proves a firmware bundle still works end to end (used to check the mangled build): starts a real
// cloud stub, provisions a device, runs the bundle in the sandbox or a real Espruino binary and
// waits until the cloud's repository holds events from it.
//   npx tsx scripts/build/check-bundle-with-cloud.ts --bundle /tmp/full/firmware.js [--espruino BIN] [--events 2] [--seconds 60]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud } from '../../cloud-stub/server.ts';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { writeDeviceConfigToFlash } from '../../hal-mocks/espruino-sandbox/device-flash.ts';
import { RealEspruino, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { EspruinoSandbox } from '../../hal-mocks/espruino-sandbox/sandbox.ts';

export interface CloudCheckOptions {
  bundlePath: string;
  /** A real Espruino Linux binary; without it the sandbox runs the bundle. */
  espruinoBin?: string;
  /** Events the cloud must have stored (default 2). */
  events?: number;
  timeoutMs?: number;
  onConsoleLine?: (line: string) => void;
}

export interface CloudCheckResult {
  ok: boolean;
  /** Events of the device in the cloud's repository when the check ended. */
  eventCount: number;
  elapsedMs: number;
  consoleLines: string[];
  /** Errors the sandbox saw thrown out of the bundle (empty for a real binary). */
  uncaughtErrors: string[];
  /** The first stored events, as the cloud decoded them. */
  events: Array<{ seq: number; templateId: string; fields: unknown }>;
}

export async function checkBundleWithCloud(options: CloudCheckOptions): Promise<CloudCheckResult> {
  const wanted = options.events ?? 2;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const workDir = mkdtempSync(join(tmpdir(), 'tandem-cloud-check-'));
  const cloudLines: string[] = [];
  const cloud = await startCloud({ dataDir: join(workDir, 'cloud'), mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: (line) => cloudLines.push(line) });
  const consoleLines: string[] = [];
  const onLine = (line: string): void => {
    consoleLines.push(line);
    options.onConsoleLine?.(line);
  };
  let stopDevice: () => Promise<void> = async () => undefined;
  let uncaught: () => string[] = () => [];
  const started = Date.now();
  let eventCount = 0;
  let events: CloudCheckResult['events'] = [];
  try {
    const deviceId = 'size-check-1';
    const provisioned = await provisionDevice(cloud.context.repository, deviceId, { hashCost: 4 });
    if (provisioned.outcome !== 'created') throw new Error(`could not provision ${deviceId}: ${provisioned.outcome}`);
    if (cloud.mqttPort === null) throw new Error('the cloud has no embedded broker port');
    const config: DeviceConfig = { deviceId, secret: provisioned.secret, mqttHost: '127.0.0.1', mqttPort: cloud.mqttPort, tls: false };
    if (options.espruinoBin !== undefined) {
      const flashDir = join(workDir, 'device');
      await writeDeviceConfigWithBinary(options.espruinoBin, flashDir, config);
      const device = new RealEspruino({ binaryPath: options.espruinoBin, workDir: flashDir, bundlePath: resolve(options.bundlePath), onConsoleLine: onLine });
      void device.start();
      stopDevice = () => device.stop();
    } else {
      const imagePath = join(workDir, 'device.flash');
      writeDeviceConfigToFlash(imagePath, config);
      const sandbox = new EspruinoSandbox({ bundlePath: resolve(options.bundlePath), flashImagePath: imagePath, onConsoleLine: onLine });
      sandbox.boot();
      stopDevice = async () => sandbox.stop();
      uncaught = () => sandbox.uncaughtErrors.map((error) => String(error));
    }
    while (Date.now() - started < timeoutMs) {
      eventCount = await cloud.context.repository.countEvents(deviceId);
      if (eventCount >= wanted) break;
      await new Promise((done) => setTimeout(done, 250));
    }
    const stored = await cloud.context.repository.listEvents(deviceId, { limit: wanted });
    events = stored.map((event) => ({ seq: event.seq, templateId: event.templateId, fields: event.fields }));
  } finally {
    const errors = uncaught();
    await stopDevice();
    await cloud.stop();
    rmSync(workDir, { recursive: true, force: true });
    uncaught = () => errors;
  }
  const uncaughtErrors = uncaught();
  return { ok: eventCount >= wanted && uncaughtErrors.length === 0, eventCount, elapsedMs: Date.now() - started, consoleLines, uncaughtErrors, events };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { bundle: { type: 'string' }, espruino: { type: 'string' }, events: { type: 'string' }, seconds: { type: 'string' } } });
  if (values.bundle === undefined) {
    console.error('usage: check-bundle-with-cloud.ts --bundle FILE [--espruino BIN] [--events N] [--seconds S]');
    return 2;
  }
  const where = values.espruino === undefined ? 'the sandbox' : values.espruino;
  console.log(`check: running ${values.bundle} in ${where} against a cloud stub ...`);
  const result = await checkBundleWithCloud({
    bundlePath: values.bundle,
    espruinoBin: values.espruino,
    events: values.events === undefined ? undefined : Number(values.events),
    timeoutMs: values.seconds === undefined ? undefined : Number(values.seconds) * 1000,
    onConsoleLine: (line) => console.log(`  [device] ${line}`),
  });
  for (const error of result.uncaughtErrors) console.log(`  [uncaught] ${error}`);
  for (const event of result.events) console.log(`  [cloud] event seq ${event.seq}, template ${event.templateId}: ${JSON.stringify(event.fields)}`);
  console.log(`check: ${result.ok ? 'OK' : 'FAILED'}: ${result.eventCount} events in the cloud after ${(result.elapsedMs / 1000).toFixed(1)} s`);
  return result.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  process.exitCode = await main();
}
