// Shared option parsing for the commands: strict flags, one clear line on bad input.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** An operating error for the user: printed as one line, exit code 2, no stack. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `args` against `options`. Unknown flags, missing values and stray positionals become a
 * UsageError naming the command, so every command fails the same way on bad input.
 */
export function parseOptions<T extends Options>(command: string, args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (error) {
    throw new UsageError(`tandem ${command}: ${(error as Error).message}. Run \`npx tandem ${command} --help\`.`);
  }
}

/** Parses a whole number option, naming the flag when it is not one. */
export function parseWholeNumber(command: string, flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) {
    throw new UsageError(`tandem ${command}: --${flag} takes a whole number, got '${value}'.`);
  }
  return number;
}

/** Runs a command body, turning UsageError into one line on stderr and exit code 2. */
export async function runCommand(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
}
