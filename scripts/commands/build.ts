// `tandem build`: bundles the firmware into dist/firmware.js, gates it for Espruino and checks its size.
import { buildFirmware } from '../build/build-firmware.ts';
import { parseOptions, parseWholeNumber, runCommand } from '../cli.ts';

export const summary = 'Bundle firmware/main.ts into dist/firmware.js, refuse what Espruino cannot run, check the size budget';

const usage = `Usage: tandem build [--entry FILE.ts] [--out FILE.js] [--budget BYTES]

Bundles the firmware with esbuild (ES2019, minified, one script), runs the Espruino gate on the
bundle and fails naming each refused construct and its TypeScript file:line, then fails when the
bundle is over the budget (firmwareBundleBytesMax in firmware/protocol/limits.ts).
  --entry   the TypeScript entry (default firmware/main.ts)
  --out     the bundle to write; its source map goes beside it (default dist/firmware.js)
  --budget  the size budget in bytes (default firmwareBundleBytesMax)
Exit codes: 0 built, 1 refused or failed, 2 bad options.`;

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('build', args, {
      help: { type: 'boolean' },
      entry: { type: 'string' },
      out: { type: 'string' },
      budget: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    const budgetBytes = values.budget === undefined ? undefined : parseWholeNumber('build', 'budget', values.budget, 0);
    const result = await buildFirmware({ entry: values.entry, outFile: values.out, budgetBytes });
    return result.ok ? 0 : 1;
  });
}
