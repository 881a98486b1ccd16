// `tandem flash`: builds the firmware, then uploads it and the device config to a board so it runs
// at boot (or, with --dry-run, writes what would be sent to a file).
import { join, resolve } from 'node:path';
import { buildFirmware, repoRoot } from '../build/build-firmware.ts';
import { FlashError, flashFirmware, loadDeviceConfig } from '../build/flash-firmware.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Upload dist/firmware.js and a device config to a board (runs at boot); --dry-run writes the upload to a file';

const usage = `Usage: tandem flash --port /dev/ttyUSB0 [--config .tandem/devices/ID.json] [--baud N]
       tandem flash --dry-run OUT.js [--config FILE]

Builds the firmware (as \`tandem build\`), then uploads it with the espruino CLI into the Storage file
.bootcde, which Espruino runs at every boot, and the device config (checked first) as tandem.cfg.
  --port      serial port of the board, or tcp://host:port
  --config    device configuration JSON (as \`tandem provision\` writes); without it the board keeps its own
  --baud      serial baud rate (default 115200, Espruino's on ESP32)
  --dry-run   write exactly the code the espruino CLI would send to this file; no board needed
  --timeout   seconds to wait for the board before giving up (default 60)
  --bundle    upload this bundle instead of dist/firmware.js
  --no-build  upload the bundle as it is, without building first
Exit codes: 0 done, 1 build or upload failed (no board answered), 2 bad options or config.`;

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('flash', args, {
      help: { type: 'boolean' },
      port: { type: 'string' },
      config: { type: 'string' },
      baud: { type: 'string' },
      'dry-run': { type: 'string' },
      timeout: { type: 'string' },
      bundle: { type: 'string' },
      'no-build': { type: 'boolean' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const dryRunFile = values['dry-run'];
    if (values.port === undefined && dryRunFile === undefined) {
      throw new UsageError('tandem flash: --port is required (e.g. --port /dev/ttyUSB0), or --dry-run OUT.js to write the upload to a file.');
    }
    if (values.port === '') throw new UsageError('tandem flash: --port is empty.');
    const baud = parseWholeNumber('flash', 'baud', values.baud, 115200);
    if (baud === 0) throw new UsageError('tandem flash: --baud must be above 0.');
    const timeoutSeconds = parseWholeNumber('flash', 'timeout', values.timeout, 60);
    if (timeoutSeconds === 0) throw new UsageError('tandem flash: --timeout must be above 0.');
    const bundleFile = values.bundle === undefined ? join(repoRoot, 'dist', 'firmware.js') : resolve(values.bundle);
    const configFile = values.config === undefined ? undefined : resolve(values.config);
    try {
      // Check the config before the build, so a wrong file fails at once.
      if (configFile !== undefined) loadDeviceConfig(configFile);
    } catch (error) {
      if (error instanceof FlashError) throw new UsageError(error.message);
      throw error;
    }

    if (!values['no-build']) {
      const built = await buildFirmware({ outFile: values.bundle === undefined ? undefined : bundleFile });
      if (!built.ok) {
        console.error('tandem flash: the build failed (see above); nothing was uploaded.');
        return 1;
      }
    }
    try {
      const result = await flashFirmware({
        port: values.port,
        bundleFile,
        configFile,
        baud,
        dryRunFile: dryRunFile === undefined ? undefined : resolve(dryRunFile),
        timeoutMs: timeoutSeconds * 1000,
        log: (line) => console.log(line),
      });
      if (result.ok) return 0;
      console.error(result.error);
      return 1;
    } catch (error) {
      if (error instanceof FlashError) throw new UsageError(error.message);
      throw error;
    }
  });
}
