// The front door for every user-facing command. Each command is one file in scripts/commands/
// exporting `summary` (one line for --help) and `run(args)` (returns the exit code).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Command {
  summary: string;
  run(args: string[]): Promise<number>;
}

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), 'commands');

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((file) => file.endsWith('.ts') && !file.startsWith('_'))
    .map((file) => file.slice(0, -3))
    .sort();
}

async function loadCommand(name: string): Promise<Command> {
  return (await import(join(commandsDir, `${name}.ts`))) as Command;
}

async function printHelp(): Promise<void> {
  const lines = ['Usage: tandem <command> [options]', '', 'Commands:'];
  for (const name of commandNames()) {
    const command = await loadCommand(name);
    lines.push(`  ${name.padEnd(10)} ${command.summary}`);
  }
  lines.push('', 'Run `tandem <command> --help` for the options of one command.');
  console.log(lines.join('\n'));
}

export async function main(args: string[]): Promise<number> {
  const name = args[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    await printHelp();
    return name === undefined ? 2 : 0;
  }
  if (!commandNames().includes(name)) {
    console.error(`tandem: unknown command '${name}'. Run \`npx tandem --help\` to list the commands.`);
    return 2;
  }
  const command = await loadCommand(name);
  try {
    return await command.run(args.slice(1));
  } catch (error) {
    // Operating errors are reported by the commands themselves; anything that gets here is a bug
    // or an unexpected failure, so show the whole stack.
    console.error(`tandem ${name}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
