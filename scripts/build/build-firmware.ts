// The firmware build: esbuild bundles TypeScript into one minified script for Espruino 2v2x, the
// Espruino gate checks it, each refusal is traced through the source map to the .ts line, and the
// size is held to the budget in firmware/protocol/limits.ts. See README.md beside this file.
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping';
import { build, type BuildFailure, type Message } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { firmwareBundleBytesMax } from '../../firmware/protocol/limits.ts';
import { parse } from 'acorn';
import { isEspruinoGlobal } from '../espruino-gate/espruino-globals.ts';
import { checkEspruinoSource, type Violation } from '../espruino-gate/index.ts';
import { analyseMangleableNames, type MangleAnalysis, type MangleScope } from './mangle-names.ts';
import { documentationProps, strippableProps, stripPropsPlugin } from './strip-props.ts';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Modules built into Espruino: `require("Storage")` stays a call on the device, never bundled. */
export const espruinoModules = ['Storage', 'net', 'tls', 'http', 'Wifi', 'ESP32', 'crypto', 'heatshrink', 'fs', 'dgram', 'neopixel'];

/**
 * The code generation settings every Espruino bundle uses (shared with tests that check the
 * minifier's output). ES2019 lowers ?. ?? ??= ||= &&= and class fields to ES5-level code with no
 * helpers; `**` is ES2016, so it is asked for lowered too (to Math.pow). Everything esbuild cannot
 * lower without helpers Espruino lacks (destructuring, spread, async ...) stays, and the gate
 * refuses it at its source line.
 */
export const espruinoCodeOptions = {
  target: 'es2019',
  supported: { 'exponent-operator': false },
  // Plain assignments in the constructor instead of Object.defineProperty-based field helpers.
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } },
  minify: true,
  // Non-ASCII characters become \xNN escapes: the bytes Espruino reads equal the string Node sees.
  charset: 'ascii',
  legalComments: 'none',
} as const;

export interface BuildOptions {
  /** The TypeScript entry; default firmware/main.ts. Relative paths are taken from the current folder. */
  entry?: string;
  /** Where the bundle goes (its source map goes beside it as `<outFile>.map`); default dist/firmware.js. */
  outFile?: string;
  /** The size budget in bytes of minified bundle; default firmwareBundleBytesMax. */
  budgetBytes?: number;
  /** No progress or failure lines on the console (the result still carries them). */
  quiet?: boolean;
  /**
   * Shorten property names nothing outside the bundle can see: 'private' members only, or every
   * 'internal' name (mangle-names.ts); false: none. Default 'internal'.
   */
  mangle?: false | MangleScope;
  /**
   * Wrap the bundle in `(function(){ ... })();` (default false). Unwrapped, its minified names are
   * globals, checked to name no Espruino global; it needs far less RAM while it starts: Espruino
   * keeps a copy of a function's text, and the wrapper's text is the whole bundle (README.md).
   */
  wrap?: boolean;
  /** Leave documentation-only properties (template `description`, `unit`) out when nothing reads them (default true). */
  stripDocs?: boolean;
}

/** Names Espruino itself looks up in the global scope besides its globals. */
const espruinoCallbackGlobals = ['onInit', 'global', 'globalThis'];

/** Top-level names of an unwrapped bundle that would replace an Espruino global. */
export function topLevelCollisions(code: string): string[] {
  const program = parse(code, { ecmaVersion: 2020, sourceType: 'script' });
  const names: string[] = [];
  for (const statement of program.body) {
    if (statement.type === 'VariableDeclaration') {
      for (const declarator of statement.declarations) if (declarator.id.type === 'Identifier') names.push(declarator.id.name);
    } else if ((statement.type === 'FunctionDeclaration' || statement.type === 'ClassDeclaration') && statement.id !== null) {
      names.push(statement.id.name);
    }
  }
  return names.filter((name) => isEspruinoGlobal(name) || espruinoCallbackGlobals.includes(name));
}

/** Where a gate violation came from in the TypeScript sources (1-based line, 0-based column). */
export interface SourceOrigin {
  file: string;
  line: number;
  column: number;
}

export interface Refusal extends Violation {
  /** The original position, or null when the construct comes from code esbuild added. */
  origin: SourceOrigin | null;
}

export interface BuildResult {
  ok: boolean;
  entry: string;
  outFile: string;
  mapFile: string;
  rawBytes: number;
  gzipBytes: number;
  budgetBytes: number;
  /** What the gate refused, traced to the sources; empty when the gate passed. */
  refusals: Refusal[];
  /** One line per failure (compile error, gate refusal, budget), ready to print. */
  failures: string[];
  /** Private member name -> the short name it has in the bundle (empty without mangling). */
  mangledNames: Record<string, string>;
  /** Documentation properties left out, and how many of them (object literal entries). */
  strippedProps: string[];
  strippedCount: number;
}

/** A path for people: relative to the repository when inside it, else absolute. */
export function displayPath(path: string): string {
  const fromRoot = relative(repoRoot, path);
  return fromRoot.startsWith('..') || isAbsolute(fromRoot) ? path : fromRoot;
}

function formatEsbuildMessage(message: Message): string {
  const where = message.location ? `${displayPath(resolve(repoRoot, message.location.file))}:${message.location.line}:${message.location.column}: ` : '';
  return `${where}${message.text}`;
}

/** Traces each violation in the bundle back to its TypeScript file and line through the source map. */
export function traceRefusals(violations: Violation[], mapText: string, mapFile: string): Refusal[] {
  const map = new TraceMap(mapText);
  return violations.map((violation) => {
    const position = originalPositionFor(map, { line: violation.line, column: violation.column });
    if (position.source === null || position.line === null) return { ...violation, origin: null };
    const file = displayPath(resolve(dirname(mapFile), position.source));
    // Put back the names the minifier changed: 'a' becomes 'startServer' again.
    let message = violation.message;
    for (const identifier of violation.identifiers ?? []) {
      const original = originalPositionFor(map, { line: identifier.line, column: identifier.column }).name;
      if (original !== null && original !== identifier.name) message = message.split(`'${identifier.name}'`).join(`'${original}'`);
    }
    return { ...violation, message, origin: { file, line: position.line, column: position.column ?? 0 } };
  });
}

export function formatRefusal(refusal: Refusal, outFile: string): string {
  const where = refusal.origin === null
    ? `${displayPath(outFile)}:${refusal.line}:${refusal.column} (code added by the bundler)`
    : `${refusal.origin.file}:${refusal.origin.line}:${refusal.origin.column}`;
  return `${where}  ${refusal.message} [${refusal.rule}]`;
}

function formatBytes(bytes: number): string {
  return bytes.toLocaleString('en-US');
}

/**
 * Bundles `entry` for Espruino, gates it and checks its size. On success writes the bundle and its
 * source map; on failure removes any stale bundle at `outFile` so nothing runs a refused build.
 */
export async function buildFirmware(options: BuildOptions = {}): Promise<BuildResult> {
  const entry = options.entry === undefined ? join(repoRoot, 'firmware', 'main.ts') : resolve(options.entry);
  const outFile = options.outFile === undefined ? join(repoRoot, 'dist', 'firmware.js') : resolve(options.outFile);
  const mapFile = `${outFile}.map`;
  const budgetBytes = options.budgetBytes ?? firmwareBundleBytesMax;
  const log = (line: string) => {
    if (!options.quiet) console.log(line);
  };
  const result: BuildResult = { ok: false, entry, outFile, mapFile, rawBytes: 0, gzipBytes: 0, budgetBytes, refusals: [], failures: [], mangledNames: {}, strippedProps: [], strippedCount: 0 };
  const fail = (lines: string[]): BuildResult => {
    result.failures.push(...lines);
    if (!options.quiet) for (const line of lines) console.error(line);
    rmSync(outFile, { force: true });
    rmSync(mapFile, { force: true });
    return result;
  };

  // The short names are fixed here, not by esbuild: the same sources give the same bundle, and no
  // short name equals a public member, an API or a built-in name (see mangle-names.ts).
  // TANDEM_BUILD_MANGLE=off|private|internal overrides the default, to rule mangling in or out.
  const fromEnv = process.env.TANDEM_BUILD_MANGLE;
  if (options.mangle === undefined && fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv !== 'off' && fromEnv !== 'private' && fromEnv !== 'internal') return fail([`build: FAILED: TANDEM_BUILD_MANGLE must be off, private or internal, not '${fromEnv}'`]);
    options = { ...options, mangle: fromEnv === 'off' ? false : fromEnv };
  }
  log(`build: bundling ${displayPath(entry)} (esbuild, ES2019, minified${options.mangle === false ? '' : `, ${options.mangle ?? 'internal'} names mangled`})`);
  let analysis: MangleAnalysis | undefined;
  if (options.mangle !== false || options.stripDocs !== false) {
    analysis = analyseMangleableNames({ entry, tsconfigPath: join(repoRoot, 'tsconfig.firmware.json'), scope: options.mangle === false ? 'private' : (options.mangle ?? 'internal') });
  }
  if (analysis !== undefined && options.mangle !== false) result.mangledNames = analysis.cache;
  const stripCounter = { removed: 0 };
  const plugins = [];
  if (analysis !== undefined && options.stripDocs !== false) {
    const verdict = strippableProps(analysis, documentationProps);
    for (const [name, reason] of Object.entries(verdict.kept)) log(`build: keeping '${name}' properties: ${reason}`);
    result.strippedProps = verdict.strip;
    if (verdict.strip.length > 0) plugins.push(stripPropsPlugin(verdict.strip, stripCounter));
  }
  const mangled = Object.keys(result.mangledNames);
  const mangleOptions = mangled.length === 0 ? {} : { mangleProps: new RegExp(`^(?:${mangled.join('|')})$`), mangleCache: { ...result.mangledNames } };
  let code: string;
  let mapText: string;
  try {
    const output = await build({
      entryPoints: [entry],
      outfile: outFile,
      absWorkingDir: repoRoot,
      write: false,
      bundle: true,
      // CommonJS keeps `require("Storage")` a plain call (IIFE output wraps it in a Proxy-based
      // shim). Unwrapped, the top-level names are globals: checked below to replace none of
      // Espruino's. Wrapped (banner and footer), Espruino holds a second copy of the whole text.
      format: 'cjs',
      ...(options.wrap === true ? { banner: { js: '(function(){' }, footer: { js: '})();' } } : {}),
      platform: 'neutral',
      mainFields: [],
      external: espruinoModules,
      ...espruinoCodeOptions,
      ...mangleOptions,
      plugins,
      sourcemap: 'external',
      sourcesContent: true,
      logLevel: 'silent',
    });
    const js = output.outputFiles.find((file) => file.path === outFile);
    const map = output.outputFiles.find((file) => file.path === mapFile);
    if (js === undefined || map === undefined) throw new Error(`esbuild wrote no ${outFile} or ${mapFile}`);
    code = js.text;
    mapText = map.text;
    result.strippedCount = stripCounter.removed;
  } catch (error) {
    const messages = (error as BuildFailure).errors;
    if (!Array.isArray(messages)) throw error;
    // The first errors say what is wrong; hundreds of lines (a Node-only import) would hide that.
    const shown = messages.slice(0, 12).map((message) => `  ${formatEsbuildMessage(message)}`);
    if (messages.length > shown.length) shown.push(`  ... and ${messages.length - shown.length} more`);
    return fail([`build: FAILED: esbuild could not bundle ${displayPath(entry)}:`, ...shown]);
  }

  if (options.wrap !== true) {
    const collisions = topLevelCollisions(code);
    if (collisions.length > 0) {
      return fail([`build: FAILED: unwrapped, ${displayPath(outFile)} would replace the Espruino globals ${collisions.join(', ')}: build it wrapped`]);
    }
  }
  result.rawBytes = Buffer.byteLength(code, 'utf8');
  result.gzipBytes = gzipSync(code, { level: 9 }).length;
  log(`build: checking ${formatBytes(result.rawBytes)} bytes with the Espruino gate`);
  const violations = checkEspruinoSource(code);
  if (violations.length > 0) {
    result.refusals = traceRefusals(violations, mapText, mapFile);
    const noun = violations.length === 1 ? 'construct' : 'constructs';
    return fail([
      `build: REFUSED ${displayPath(outFile)}: ${violations.length} ${noun} Espruino cannot run (or runs differently):`,
      ...result.refusals.map((refusal) => `  ${formatRefusal(refusal, outFile)}`),
    ]);
  }

  const percent = Math.round((result.rawBytes / budgetBytes) * 100);
  const sizeLine = `${formatBytes(result.rawBytes)} bytes (gzip ${formatBytes(result.gzipBytes)}) of the ${formatBytes(budgetBytes)}-byte budget (${percent}%)`;
  if (result.rawBytes > budgetBytes) {
    return fail([`build: FAILED: ${displayPath(outFile)} is ${sizeLine}: over budget (firmwareBundleBytesMax in firmware/protocol/limits.ts)`]);
  }
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, code);
  writeFileSync(mapFile, mapText);
  log(`build: ${displayPath(outFile)} ${sizeLine}, gate passed; source map ${displayPath(mapFile)}`);
  result.ok = true;
  return result;
}
