// `tandem start` (`npm start`): the main job. Builds the firmware, starts the cloud stub with its
// dashboard, provisions N devices and runs each as an emulated board over real TCP, until Ctrl-C.
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { PortInUseError } from '../../cloud-stub/server.ts';
import { RpcConfigError } from '../../cloud-stub/rpc-proxy.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';
import { startFleet } from '../fleet/fleet.ts';
import { buildFirmwareBundle, defaultBundlePath } from './emulate.ts';

export const summary = 'Run the cloud and a fleet of emulated devices with a live dashboard (the main job)';

const usage = `Usage: tandem start [--devices N] [--espruino PATH] [--http-port N] [--mqtt-port N]
                    [--host ADDR] [--data-dir DIR] [--bundle FILE] [--quiet] [--seconds N]

Builds dist/firmware.js, starts the cloud stub (embedded MQTT broker, SQLite, HTTP API and the
dashboard), provisions devices demo-1 .. demo-N and boots each in its own emulated board with its
own flash image, connected over real TCP. Prints the dashboard address; Ctrl-C stops everything.
  --devices N     how many devices (default 3, at most 50)
  --espruino PATH run the devices in this Espruino Linux binary instead of the sandbox
                  (or set ESPRUINO_BIN)
  --http-port N   HTTP port of the API and dashboard (default 8080; 0 picks a free one)
  --mqtt-port N   embedded broker port (default 0: a free one, the devices are told which)
  --host ADDR     address the dashboard listens on (default 127.0.0.1; 0.0.0.0 for all)
  --data-dir DIR  cloud data and the devices' flash images (default .tandem/cloud); a second run
                  on the same folder keeps every device's state and events
  --bundle FILE   run this firmware bundle instead of building firmware/main.ts first
  --quiet         do not print the devices' console lines
  --seconds N     stop after N seconds (default: run until Ctrl-C)`;

/** More would not fit on two cores with the dashboard still responsive. */
const devicesMax = 50;

function port(flag: string, value: string | undefined, fallback: number): number {
  const number = parseWholeNumber('start', flag, value, fallback);
  if (number > 65535) throw new UsageError(`tandem start: --${flag} must be from 0 to 65535, got ${number}.`);
  return number;
}

/** Throws a UsageError with `message` when `port` (non-zero) cannot be listened on at `host`. */
async function assertPortFree(host: string, port: number, message: string): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  const problem = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen(port, host, () => resolve(null));
  });
  if (problem === null) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return;
  }
  if (problem.code === 'EADDRINUSE') throw new UsageError(`tandem start: ${message}`);
  throw new UsageError(`tandem start: cannot listen on ${host}:${port} (${problem.code ?? problem.message}). Pick another --host or port.`);
}

function waitForStop(seconds: number | undefined): Promise<string> {
  return new Promise((resolve) => {
    const timer = seconds === undefined ? undefined : setTimeout(() => finish(`${seconds} s passed`), seconds * 1000);
    const onInt = (): void => finish('Ctrl-C');
    const onTerm = (): void => finish('SIGTERM');
    function finish(reason: string): void {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (timer !== undefined) clearTimeout(timer);
      resolve(reason);
    }
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('start', args, {
      help: { type: 'boolean' },
      devices: { type: 'string' },
      espruino: { type: 'string' },
      'http-port': { type: 'string' },
      'mqtt-port': { type: 'string' },
      host: { type: 'string' },
      'data-dir': { type: 'string' },
      bundle: { type: 'string' },
      quiet: { type: 'boolean' },
      seconds: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const deviceCount = parseWholeNumber('start', 'devices', values.devices, 3);
    if (deviceCount < 1 || deviceCount > devicesMax) throw new UsageError(`tandem start: --devices must be from 1 to ${devicesMax}, got ${deviceCount}.`);
    const httpPort = port('http-port', values['http-port'], 8080);
    const mqttPort = port('mqtt-port', values['mqtt-port'], 0);
    let seconds: number | undefined;
    if (values.seconds !== undefined) {
      seconds = Number(values.seconds);
      if (!(seconds > 0)) throw new UsageError(`tandem start: --seconds takes a positive number, got '${values.seconds}'.`);
    }
    const binary = values.espruino ?? (process.env.ESPRUINO_BIN || undefined);
    if (binary !== undefined && !existsSync(binary)) {
      throw new UsageError(`tandem start: no Espruino binary at ${binary}. Pass --espruino PATH to a Linux build, or unset ESPRUINO_BIN to use the sandbox.`);
    }

    if (values.bundle !== undefined && !existsSync(values.bundle)) {
      throw new UsageError(`tandem start: no firmware bundle at ${values.bundle}. Build one with \`npx tandem build\`, or leave out --bundle.`);
    }
    // Taken ports are found before the build, so the answer comes in a second, not after it.
    const host = values.host ?? '127.0.0.1';
    await assertPortFree(host, httpPort, `HTTP port ${httpPort} is already in use. Choose another with --http-port N (0 picks a free one).`);
    await assertPortFree('127.0.0.1', mqttPort, `MQTT port ${mqttPort} is already in use. Choose another with --mqtt-port N, or leave it out to pick a free one.`);

    const started = Date.now();
    let bundlePath: string;
    if (values.bundle !== undefined) {
      bundlePath = values.bundle;
      console.log(`[1/5] using the firmware bundle ${bundlePath} ...`);
    } else {
      console.log('[1/5] building the firmware (gate, minifier, size budget; about 10 s) ...');
      bundlePath = await buildFirmwareBundle(defaultBundlePath, true);
      console.log(`      ${bundlePath}: ${statSync(bundlePath).size} bytes, built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    let fleet;
    try {
      fleet = await startFleet({
        deviceCount,
        bundlePath,
        dataDir: values['data-dir'],
        httpPort,
        httpHost: values.host,
        mqttPort,
        espruinoBinary: binary,
        onDeviceLine: values.quiet ? undefined : (deviceId, line) => console.log(`[${deviceId}] ${line}`),
      });
    } catch (error) {
      if (error instanceof PortInUseError) {
        const message = error.message.startsWith('MQTT')
          ? `MQTT port ${error.port} is already in use. Choose another with --mqtt-port N, or leave it out to pick a free one.`
          : `${error.message.replace(/\.$/, '')} (0 picks a free one).`;
        throw new UsageError(`tandem start: ${message}`);
      }
      if (error instanceof RpcConfigError) throw new UsageError(`tandem start: ${error.message}`);
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EADDRNOTAVAIL') throw new UsageError(`tandem start: cannot listen (${(error as Error).message}). Pick another --host or --http-port.`);
      throw error;
    }
    console.log('');
    console.log(`Ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${fleet.deviceIds.length} device(s), data in ${fleet.cloud.dataDir}`);
    console.log(`Dashboard: ${fleet.dashboardUrl}`);
    console.log(`API:       ${fleet.baseUrl}/api (admin token in ${fleet.cloud.dataDir}/admin-token)`);
    console.log('Ctrl-C stops everything.');
    console.log('');
    const reason = await waitForStop(seconds);
    console.log(`tandem start: stopping (${reason}) ...`);
    await fleet.stop();
    console.log('tandem start: stopped.');
    return 0;
  });
}
