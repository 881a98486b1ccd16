// `tandem start`: the main job. Until the cloud and the device fleet arrive (issue 7) it builds
// the firmware and runs one emulated device, exactly as `tandem emulate` with its defaults.
import { parseOptions, runCommand } from '../cli.ts';
import { run as runEmulate } from './emulate.ts';

export const summary = 'Run the main job (for now: build the firmware and run one emulated device)';

const usage = `Usage: tandem start [--espruino PATH] [--seconds N]

For now the same as \`tandem emulate\` with its defaults: builds dist/firmware.js and runs it as
device "emu-1" against the broker at 127.0.0.1:1883, printing its console until Ctrl-C.
  --espruino  run the device in this Espruino Linux binary (or set ESPRUINO_BIN)
  --seconds   stop after this many seconds`;

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('start', args, {
      help: { type: 'boolean' },
      espruino: { type: 'string' },
      seconds: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    console.log('tandem start: building the firmware and running one emulated device (the cloud and fleet arrive later).');
    const forwarded: string[] = [];
    if (values.espruino !== undefined) forwarded.push('--espruino', values.espruino);
    if (values.seconds !== undefined) forwarded.push('--seconds', values.seconds);
    return runEmulate(forwarded);
  });
}
