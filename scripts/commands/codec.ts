// `tandem codec encode|decode`: NDJSON records to a frame file and back, with the same codec the
// device and the cloud use (firmware/protocol). A record outside its template is refused with its
// record number, line and field; nothing is clamped. The frame file is SPEC.md [WIRE-60].
import { readFileSync, writeFileSync } from 'node:fs';
import { checkTemplates } from '../../firmware/protocol/template-check.ts';
import { findTemplateByName, templateHashHex, type Template } from '../../firmware/protocol/template.ts';
import { allTemplates, createDefaultRegistry } from '../../firmware/protocol/templates/index.ts';
import { wireErrorName } from '../../firmware/protocol/wire-errors.ts';
import { wireFrameBytesMax } from '../../firmware/protocol/limits.ts';
import { decodeFrame, encodeRecordsToFrames, encodeUntemplatedFrames, readFrameFile, writeFrameFile } from '../../firmware/protocol/wire-objects.ts';
import { parseOptions, parseWholeNumber, runCommand, UsageError } from '../cli.ts';

export const summary = 'Encode NDJSON records into wire frames (encode) or decode frames back to NDJSON (decode)';

const usage = `Usage:
  tandem codec encode --template NAME --in records.ndjson --out batch.bin [--frame-bytes N] [--first-seq N]
  tandem codec encode --untemplated   --in records.ndjson --out batch.bin
  tandem codec decode --in batch.bin [--out records.ndjson]

encode  one JSON object per line; each must match the template (every field, in range, on type).
        Records are packed into as few frames as fit (--frame-bytes, default and max ${wireFrameBytesMax}).
        --untemplated uses the self-describing fallback for any JSON values (bigger).
decode  writes one JSON object per line (to stdout without --out); the frames name their template.
        Exit code 1 when a frame is damaged or names a template this build does not know.

Templates: ${allTemplates().map((t) => `${t.name} (v${t.version}, hash ${templateHashHex(t.hash)})`).join(', ')}`;

function readInput(command: string, path: string | undefined): Buffer {
  if (path === undefined) throw new UsageError(`tandem codec ${command}: --in FILE is required. Run \`npx tandem codec --help\`.`);
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(`tandem codec ${command}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function findTemplate(name: string): Template {
  const registry = createDefaultRegistry();
  const byName = findTemplateByName(registry, name);
  if (byName !== null) return byName;
  const byHash = registry.templates.find((t) => templateHashHex(t.hash) === name.toLowerCase());
  if (byHash !== undefined) return byHash;
  throw new UsageError(`tandem codec encode: no template '${name}'. Known: ${registry.templates.map((t) => t.name).join(', ')}.`);
}

async function encode(args: string[]): Promise<number> {
  const { values } = parseOptions('codec encode', args, {
    help: { type: 'boolean' },
    template: { type: 'string' },
    untemplated: { type: 'boolean' },
    in: { type: 'string' },
    out: { type: 'string' },
    'frame-bytes': { type: 'string' },
    'first-seq': { type: 'string' },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if ((values.template === undefined) === (values.untemplated !== true)) {
    throw new UsageError('tandem codec encode: give either --template NAME or --untemplated.');
  }
  if (values.out === undefined) throw new UsageError('tandem codec encode: --out FILE is required.');
  const frameBytesMax = parseWholeNumber('codec encode', 'frame-bytes', values['frame-bytes'], wireFrameBytesMax);
  if (frameBytesMax < 16 || frameBytesMax > wireFrameBytesMax) throw new UsageError(`tandem codec encode: --frame-bytes must be 16..${wireFrameBytesMax}.`);
  const firstSeq = parseWholeNumber('codec encode', 'first-seq', values['first-seq'], 0);
  const text = readInput('encode', values.in).toString('utf8');

  // Records are numbered from 1 in input order; blank lines are skipped but lines are counted.
  const records: unknown[] = [];
  const lineOf: number[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    try {
      records.push(JSON.parse(line));
    } catch (error) {
      console.error(`tandem codec encode: ${values.in}: record ${records.length + 1} (line ${i + 1}): not JSON: ${(error as Error).message}`);
      return 1;
    }
    lineOf.push(i + 1);
  }
  if (records.length === 0) {
    console.error(`tandem codec encode: ${values.in} holds no records.`);
    return 1;
  }
  const template = values.untemplated ? null : findTemplate(values.template as string);
  const problem = template === null ? null : checkTemplates([template]);
  if (problem !== null) throw new Error(`template file is invalid: ${problem}`);
  const result = template === null ? encodeUntemplatedFrames(records, { frameBytesMax, firstSeq }) : encodeRecordsToFrames(template, records, { frameBytesMax, firstSeq });
  if (!result.ok) {
    const where = result.error.message.replace(/^record (\d+)/, (_, n: string) => `record ${n} (line ${lineOf[Number(n) - 1]})`);
    console.error(`tandem codec encode: ${values.in}: ${where}`);
    return 1;
  }
  const file = writeFrameFile(result.frames);
  writeFileSync(values.out, file);
  const what = template === null ? 'untemplated' : `${template.name} v${template.version} (hash ${templateHashHex(template.hash)})`;
  const frameBytes = result.frames.reduce((sum, frame) => sum + frame.length, 0);
  console.log(
    `encoded ${records.length} records as ${what} into ${result.frames.length} frame(s): ${frameBytes} bytes of frames ` +
      `(${(frameBytes / records.length).toFixed(2)} bytes/record, from ${Buffer.byteLength(text)} bytes of NDJSON), file ${values.out} ${file.length} bytes`,
  );
  return 0;
}

async function decode(args: string[]): Promise<number> {
  const { values } = parseOptions('codec decode', args, { help: { type: 'boolean' }, in: { type: 'string' }, out: { type: 'string' } });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const bytes = new Uint8Array(readInput('decode', values.in));
  const file = readFrameFile(bytes);
  const registry = createDefaultRegistry();
  const lines: string[] = [];
  const fail = (message: string): number => {
    console.error(`tandem codec decode: ${values.in}: ${message}`);
    return 1;
  };
  for (let f = 0; f < file.frames.length; f++) {
    const decoded = decodeFrame(file.frames[f], registry);
    if (!decoded.ok) return fail(`frame ${f + 1}: ${decoded.message}`);
    for (const record of decoded.records) lines.push(JSON.stringify(record));
  }
  if (file.code !== 0) return fail(`frame ${file.frame + 1}: bad frame length (${wireErrorName(file.code)})`);
  const output = lines.length > 0 ? `${lines.join('\n')}\n` : '';
  if (values.out === undefined) process.stdout.write(output);
  else {
    writeFileSync(values.out, output);
    console.log(`decoded ${lines.length} records from ${file.frames.length} frame(s) into ${values.out}`);
  }
  return 0;
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const sub = args[0];
    if (sub === 'encode') return encode(args.slice(1));
    if (sub === 'decode') return decode(args.slice(1));
    if (sub === undefined || sub === '--help' || sub === '-h') {
      console.log(usage);
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`tandem codec: unknown subcommand '${sub}' (encode or decode). Run \`npx tandem codec --help\`.`);
  });
}
