// `tandem emulate`: builds the firmware and boots dist/firmware.js as one emulated device, in the
// Espruino sandbox or, with --espruino PATH (or ESPRUINO_BIN), in a real Espruino Linux binary.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deviceConfigError, type DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { EspruinoSandbox, writeDeviceConfigToFlash } from '../../hal-mocks/espruino-sandbox/index.ts';
import { RealEspruino, writeDeviceConfigWithBinary } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../build/build-firmware.ts';
import { parseOptions, runCommand, UsageError } from '../cli.ts';

export const summary = 'Build the firmware and run it as one emulated device (sandbox, or a real Espruino binary)';

const usage = `Usage: tandem emulate [--config FILE] [--espruino PATH] [--flash DIR] [--seconds N]

Builds dist/firmware.js, writes the device config into the device's flash, boots the bundle and
prints the device console until Ctrl-C.
  --config    device config JSON (default: deviceId "emu-1", broker 127.0.0.1:1883, no TLS)
  --espruino  run in this Espruino Linux binary instead of the sandbox (or set ESPRUINO_BIN)
  --flash     folder holding the device's espruino.flash (default .tandem/emulator); a real
              binary runs in that folder. The sandbox's image has the same format as the Linux
              build's, so both modes see the same device.
  --seconds   stop after this many seconds (default: run until Ctrl-C)`;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const defaultBundlePath = join(repoRoot, 'dist', 'firmware.js');
export const defaultFlashDir = join(repoRoot, '.tandem', 'emulator');

export const defaultDeviceConfig: DeviceConfig = {
  deviceId: 'emu-1',
  secret: 'dev-secret',
  mqttHost: '127.0.0.1',
  mqttPort: 1883,
  tls: false,
};

/**
 * Builds the bundle with the build command's pipeline (Espruino gate and size budget included).
 * `entry` lets tests bundle a probe instead of firmware/main.ts. Returns the bundle's path.
 */
export async function buildFirmwareBundle(outFile = defaultBundlePath, quiet = false, entry?: string): Promise<string> {
  const result = await buildFirmware({ outFile, quiet, ...(entry !== undefined ? { entry } : {}) });
  if (!result.ok) throw new UsageError(`tandem emulate: the firmware build failed: ${result.failures.join(' | ')}`);
  return result.outFile;
}

function readConfig(path: string | undefined): DeviceConfig {
  if (path === undefined) return defaultDeviceConfig;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    throw new UsageError(`tandem emulate: cannot read --config ${path}: ${(error as Error).message}`);
  }
  const problem = deviceConfigError(value);
  if (problem !== null) throw new UsageError(`tandem emulate: --config ${path}: ${problem}`);
  return value as DeviceConfig;
}

function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!(seconds > 0)) throw new UsageError(`tandem emulate: --seconds takes a positive number, got '${value}'.`);
  return seconds;
}

/** Resolves when Ctrl-C arrives or `seconds` have passed. */
function waitForStop(seconds: number | undefined, stoppedEarly: Promise<string>): Promise<string> {
  return new Promise((resolvePromise) => {
    const onSignal = (): void => finish('Ctrl-C');
    const timer = seconds === undefined ? undefined : setTimeout(() => finish(`${seconds} s passed`), seconds * 1000);
    let done = false;
    function finish(reason: string): void {
      if (done) return;
      done = true;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (timer !== undefined) clearTimeout(timer);
      resolvePromise(reason);
    }
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    void stoppedEarly.then(finish);
  });
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('emulate', args, {
      help: { type: 'boolean' },
      config: { type: 'string' },
      espruino: { type: 'string' },
      flash: { type: 'string' },
      seconds: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const config = readConfig(values.config);
    const seconds = parseSeconds(values.seconds);
    const binary = values.espruino ?? (process.env.ESPRUINO_BIN || undefined);
    if (binary !== undefined && !existsSync(binary)) {
      throw new UsageError(`tandem emulate: no Espruino binary at ${binary}. Pass --espruino PATH to a Linux build, or unset ESPRUINO_BIN to use the sandbox.`);
    }
    const flashDir = resolve(values.flash ?? defaultFlashDir);
    mkdirSync(flashDir, { recursive: true });

    console.log('[1/3] building the firmware ...');
    const bundlePath = await buildFirmwareBundle(defaultBundlePath);
    const prefix = `[${config.deviceId}] `;
    const printLine = (line: string): void => console.log(prefix + line);

    if (binary !== undefined) {
      console.log(`[2/3] writing the device config into ${join(flashDir, 'espruino.flash')} ...`);
      await writeDeviceConfigWithBinary(binary, flashDir, config);
      console.log(`[3/3] storing ${bundlePath} as boot code and booting ${binary} from it, as a flashed board boots (Ctrl-C stops) ...`);
      // Booted from Storage: run as a file, Espruino would hold the whole source in JsVars.
      const device = new RealEspruino({ binaryPath: binary, workDir: flashDir, bundlePath, bootFrom: 'storage', onConsoleLine: printLine });
      device.install();
      const exited = device.start();
      const reason = await waitForStop(seconds, exited.then((code) => `the interpreter exited with code ${code}`));
      await device.stop();
      console.log(`tandem emulate: stopped (${reason}).`);
      return 0;
    }

    const imagePath = join(flashDir, 'espruino.flash');
    console.log(`[2/3] writing the device config into ${imagePath} ...`);
    writeDeviceConfigToFlash(imagePath, config);
    console.log('[3/3] booting the bundle in the Espruino sandbox (Ctrl-C stops) ...');
    let onHalted: (reason: string) => void = () => undefined;
    const halted = new Promise<string>((resolvePromise) => (onHalted = resolvePromise));
    const sandbox = new EspruinoSandbox({
      bundlePath,
      flashImagePath: imagePath,
      onConsoleLine: printLine,
      onHalt: (reason) => {
        if (reason !== 'stop') onHalted(`the device halted (${reason})`);
      },
    });
    sandbox.boot();
    const reason = await waitForStop(seconds, halted);
    sandbox.stop();
    console.log(`tandem emulate: stopped (${reason}).`);
    return 0;
  });
}
