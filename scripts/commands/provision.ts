// `tandem provision DEVICE`: registers a device with a new secret (stored hashed) and writes the
// device config file that `tandem flash` and the emulators load.
import { join, resolve } from 'node:path';
import { devicesDirDefault, openRepository, resolveDataDir } from '../../cloud-stub/data-dir.ts';
import { buildDeviceConfig, deviceConfigExists, provisionDevice, writeDeviceConfig } from '../../cloud-stub/provisioning.ts';
import { ensureTlsMaterial, TlsMaterialError } from '../../cloud-stub/tls-material.ts';
import { isValidEventFlashBytes, isValidEventFlashFlushMs } from '../../firmware/protocol/device-config.ts';
import { spillAreaBytesDefault, spillSectorCountMax } from '../../firmware/protocol/limits.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Register a device (credential stored hashed) and write its device config file';

const usage = `Usage: tandem provision DEVICE [options]

  DEVICE              1 to 32 characters of A-Z a-z 0-9 _ -
  --host H            broker host the device connects to (default 127.0.0.1)
  --port P            broker port (default 1883, or 8883 with --tls)
  --tls               connect with TLS and pin the local CA (made in the data directory if missing)
  --out FILE          where to write the config (default .tandem/devices/DEVICE.json)
  --data-dir DIR      the cloud's data directory (default TANDEM_DATA_DIR or .tandem/cloud)
  --rotate            issue a new secret for an existing device (the old one stops working)
  --wifi-ssid S       WiFi network for the board, with --wifi-password P
  --event-flash KIB   flash for the durable event cache, in KiB: 0 turns it off (events in RAM
                      only), else a multiple of 4 from 8 to 256 (default 128)
  --event-flush-ms MS how long an event may wait in RAM before it is programmed (default 1000;
                      0 writes every event through: nothing lost but the one being written, more
                      flash wear)

DATABASE_URL selects PostgreSQL instead of the SQLite file in the data directory.`;

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values, positionals } = parseOptions(
      'provision',
      args,
      {
        help: { type: 'boolean' },
        host: { type: 'string' },
        port: { type: 'string' },
        tls: { type: 'boolean' },
        out: { type: 'string' },
        'data-dir': { type: 'string' },
        rotate: { type: 'boolean' },
        'wifi-ssid': { type: 'string' },
        'wifi-password': { type: 'string' },
        'event-flash': { type: 'string' },
        'event-flush-ms': { type: 'string' },
      },
      true,
    );
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError('tandem provision: name exactly one DEVICE. Run `npx tandem provision --help`.');
    const deviceId = positionals[0]!;
    const tls = Boolean(values.tls);
    const port = parseWholeNumber('provision', 'port', values.port, tls ? 8883 : 1883);
    if (port < 1 || port > 65535) throw new UsageError(`tandem provision: --port must be from 1 to 65535, got ${port}.`);
    if ((values['wifi-ssid'] === undefined) !== (values['wifi-password'] === undefined)) {
      throw new UsageError('tandem provision: give --wifi-ssid and --wifi-password together.');
    }
    const eventFlashKib = parseWholeNumber('provision', 'event-flash', values['event-flash'], spillAreaBytesDefault / 1024);
    if (!isValidEventFlashBytes(eventFlashKib * 1024)) throw new UsageError(`tandem provision: --event-flash must be 0 or a multiple of 4 from 8 to ${spillSectorCountMax * 4} (KiB), got ${eventFlashKib}.`);
    const eventFlushMs = values['event-flush-ms'] === undefined ? undefined : parseWholeNumber('provision', 'event-flush-ms', values['event-flush-ms'], 0);
    if (eventFlushMs !== undefined && !isValidEventFlashFlushMs(eventFlushMs)) throw new UsageError(`tandem provision: --event-flush-ms must be from 0 to 600000, got ${eventFlushMs}.`);
    const dataDir = resolveDataDir(values['data-dir']);
    const out = resolve(values.out ?? join(devicesDirDefault, `${deviceId}.json`));

    let caCert: string | undefined;
    if (tls) {
      try {
        console.log('provision: preparing the local CA ...');
        caCert = ensureTlsMaterial(dataDir).caCertPem;
      } catch (error) {
        if (error instanceof TlsMaterialError) throw new UsageError(`tandem provision: ${error.message}`);
        throw error;
      }
    }

    const { repository, description } = await openRepository({ dataDir, databaseUrl: process.env.DATABASE_URL });
    try {
      const outcome = await provisionDevice(repository, deviceId, { rotate: Boolean(values.rotate) });
      if (outcome.outcome === 'invalid-id') throw new UsageError(`tandem provision: ${outcome.message}.`);
      if (outcome.outcome === 'exists') {
        throw new UsageError(
          `tandem provision: device '${deviceId}' is already provisioned${deviceConfigExists(out) ? ` (config in ${out})` : ''}; add --rotate to issue a new secret.`,
        );
      }
      const config = buildDeviceConfig({
        deviceId,
        secret: outcome.secret,
        mqttHost: values.host ?? '127.0.0.1',
        mqttPort: port,
        tls,
        caCert,
        wifiSsid: values['wifi-ssid'],
        wifiPassword: values['wifi-password'],
        eventFlashBytes: eventFlashKib * 1024,
        eventFlashFlushMs: eventFlushMs,
      });
      writeDeviceConfig(out, config);
      console.log(`provision: ${outcome.outcome === 'rotated' ? 'issued a new secret for' : 'registered'} '${deviceId}' in ${description}`);
      console.log(`provision: wrote ${out} (it holds the device's secret: keep it private)`);
      console.log(`provision: the device connects to ${tls ? 'mqtts' : 'mqtt'}://${config.mqttHost}:${config.mqttPort}`);
      console.log(`provision: durable event cache ${eventFlashKib > 0 ? `on, ${eventFlashKib} KiB of flash` : 'off (events in RAM only)'}`);
      return 0;
    } finally {
      await repository.close();
    }
  });
}
