// `tandem schema --json-schema | --sql sqlite | --sql postgres`: typed schemas generated from the
// templates (firmware/protocol/templates), so downstream stores get real columns with the
// templates' ranges as constraints instead of a JSON blob.
import { writeFileSync } from 'node:fs';
import { checkTemplates } from '../../firmware/protocol/template-check.ts';
import { fieldInfo, templateHashHex, type Field, type Template } from '../../firmware/protocol/template.ts';
import { allTemplates } from '../../firmware/protocol/templates/index.ts';
import { parseOptions, runCommand, UsageError } from '../cli.ts';

export const summary = 'Generate JSON Schema or SQL tables (sqlite, postgres) from the templates';

export type SqlDialect = 'sqlite' | 'postgres';

const usage = `Usage: tandem schema (--json-schema | --sql sqlite | --sql postgres) [--template NAME] [--out FILE]

--json-schema   one JSON Schema (draft 2020-12) per template, under $defs
--sql DIALECT   CREATE TABLE statements: one table per template version, named <name>_v<version>,
                keyed by (device_id, boot_epoch, seq) so replays are recognised, one column per field
                with the template's range, enum and length as CHECK constraints
--template NAME only this template (default: all)
--out FILE      write there instead of stdout`;

/** Decimal places of a resolution: 0.1 -> 1, 0.25 -> 2, 5 -> 0. */
function decimalsOf(resolution: number): number {
  let decimals = 0;
  let scaled = resolution;
  while (Math.abs(scaled - Math.round(scaled)) > 1e-9 && decimals < 15) {
    decimals++;
    scaled = resolution * 10 ** decimals;
  }
  return decimals;
}

/** A field's bounds as values (not steps). */
function bounds(field: Field): { min: number; max: number } {
  const def = field.definition;
  if (field.typeName === 'fixed') return { min: def.min as number, max: def.max as number };
  return { min: field.minQ, max: field.maxQ };
}

function fieldJsonSchema(field: Field): Record<string, unknown> {
  const def = field.definition;
  const schema: Record<string, unknown> = {};
  if (def.description !== undefined) schema.description = def.description;
  if (def.unit !== undefined) schema['x-unit'] = def.unit;
  switch (field.typeName) {
    case 'bool':
      return { ...schema, type: 'boolean' };
    case 'uint':
    case 'int':
      return { ...schema, type: 'integer', minimum: field.minQ, maximum: field.maxQ };
    case 'fixed': {
      const resolution = def.resolution as number;
      // multipleOf with a fraction fails on binary floats (21.3 / 0.1), so only whole steps use it.
      const step = resolution >= 1 && Number.isInteger(resolution) ? { multipleOf: resolution } : {};
      return { ...schema, type: 'number', minimum: def.min, maximum: def.max, ...step, 'x-resolution': resolution };
    }
    case 'f32':
      return { ...schema, type: 'number', minimum: -3.4028234663852886e38, maximum: 3.4028234663852886e38, 'x-format': 'float32' };
    case 'enum':
      return { ...schema, type: 'string', enum: field.labels };
    case 'string':
      // The limit is in UTF-8 bytes on the wire; maxLength counts characters, so it is an upper bound.
      return { ...schema, type: 'string', maxLength: field.maxLength, 'x-max-bytes': field.maxLength };
    case 'timestamp':
      return {
        ...schema,
        type: 'integer',
        minimum: 0,
        maximum: field.maxQ * field.divider,
        multipleOf: field.divider,
        'x-format': 'unix-epoch-ms',
        'x-resolution-ms': field.divider,
      };
  }
}

/** JSON Schema (draft 2020-12) of the records of each template, under $defs by template name. */
export function jsonSchemaFor(templates: Template[]): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  for (const template of templates) {
    const properties: Record<string, unknown> = {};
    for (let f = 0; f < template.fields.length; f++) properties[template.fields[f].name] = fieldJsonSchema(fieldInfo(template, f));
    defs[template.name] = {
      $id: `urn:tandem:template:${template.name}:v${template.version}`,
      title: `${template.name} v${template.version}`,
      ...(template.definition.description !== undefined ? { description: template.definition.description } : {}),
      'x-template-id': template.id,
      'x-template-version': template.version,
      'x-template-hash': templateHashHex(template.hash),
      type: 'object',
      additionalProperties: false,
      required: template.fields.map((field) => field.name),
      properties,
    };
  }
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'urn:tandem:templates', $defs: defs };
}

const quote = (name: string) => `"${name}"`;

function sqlLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The smallest Postgres integer type holding min..max. */
function postgresInteger(min: number, max: number): string {
  if (min >= -32768 && max <= 32767) return 'SMALLINT';
  if (min >= -2147483648 && max <= 2147483647) return 'INTEGER';
  return 'BIGINT';
}

function columnSql(field: Field, dialect: SqlDialect): string {
  const name = quote(field.name);
  const { min, max } = bounds(field);
  const range = `CHECK (${name} BETWEEN ${min} AND ${max})`;
  switch (field.typeName) {
    case 'bool':
      return dialect === 'postgres' ? `${name} BOOLEAN NOT NULL` : `${name} INTEGER NOT NULL CHECK (${name} IN (0, 1))`;
    case 'uint':
    case 'int':
      return `${name} ${dialect === 'postgres' ? postgresInteger(min, max) : 'INTEGER'} NOT NULL ${range}`;
    case 'fixed': {
      if (dialect === 'sqlite') return `${name} REAL NOT NULL ${range}`;
      const scale = decimalsOf(field.definition.resolution as number);
      const digits = Math.max(String(Math.floor(Math.abs(min))).length, String(Math.floor(Math.abs(max))).length) + scale;
      return `${name} NUMERIC(${Math.max(digits, 1)}, ${scale}) NOT NULL ${range}`;
    }
    case 'f32':
      return `${name} REAL NOT NULL`;
    case 'enum':
      return `${name} TEXT NOT NULL CHECK (${name} IN (${field.labels.map(sqlLiteral).join(', ')}))`;
    case 'string':
      return dialect === 'postgres'
        ? `${name} TEXT NOT NULL CHECK (octet_length(${name}) <= ${field.maxLength})`
        : `${name} TEXT NOT NULL CHECK (length(CAST(${name} AS BLOB)) <= ${field.maxLength})`;
    case 'timestamp':
      // Postgres gets a real timestamp; SQLite has none, so Unix epoch milliseconds as in records.
      return dialect === 'postgres' ? `${name} TIMESTAMPTZ(3) NOT NULL` : `${name} INTEGER NOT NULL CHECK (${name} BETWEEN 0 AND ${field.maxQ * field.divider})`;
  }
}

/** The table name of a template version: kebab-case becomes snake_case, plus _v<version>. */
export function tableName(template: Template): string {
  return `${template.name.replace(/-/g, '_')}_v${template.version}`;
}

/** CREATE TABLE statements for the events of each template. */
export function sqlFor(templates: Template[], dialect: SqlDialect): string {
  const statements = templates.map((template) => {
    const columns = [
      `"device_id" TEXT NOT NULL`,
      `"boot_epoch" BIGINT NOT NULL`,
      `"seq" BIGINT NOT NULL`,
      ...template.fields.map((_, f) => columnSql(fieldInfo(template, f), dialect)),
      `PRIMARY KEY ("device_id", "boot_epoch", "seq")`,
    ];
    const header = `-- ${template.name} v${template.version}, template id ${template.id}, hash ${templateHashHex(template.hash)}${template.definition.description ? `: ${template.definition.description}` : ''}`;
    return `${header}\nCREATE TABLE IF NOT EXISTS ${quote(tableName(template))} (\n  ${columns.join(',\n  ')}\n);\n`;
  });
  return `-- Generated by \`tandem schema --sql ${dialect}\` from firmware/protocol/templates. Do not edit.\n${statements.join('\n')}`;
}

export function run(args: string[]): Promise<number> {
  return runCommand(async () => {
    const { values } = parseOptions('schema', args, {
      help: { type: 'boolean' },
      'json-schema': { type: 'boolean' },
      sql: { type: 'string' },
      template: { type: 'string' },
      out: { type: 'string' },
    });
    if (values.help) {
      console.log(usage);
      return 0;
    }
    if (values['json-schema'] === true && values.sql !== undefined) throw new UsageError('tandem schema: choose one of --json-schema and --sql.');
    if (values['json-schema'] !== true && values.sql === undefined) throw new UsageError('tandem schema: say --json-schema, --sql sqlite or --sql postgres. Run `npx tandem schema --help`.');
    if (values.sql !== undefined && values.sql !== 'sqlite' && values.sql !== 'postgres') {
      throw new UsageError(`tandem schema: --sql takes sqlite or postgres, got '${values.sql}'.`);
    }
    let templates = allTemplates();
    const problem = checkTemplates(templates);
    if (problem !== null) throw new Error(`template files are invalid: ${problem}`);
    if (values.template !== undefined) {
      templates = templates.filter((template) => template.name === values.template);
      if (templates.length === 0) throw new UsageError(`tandem schema: no template '${values.template}'. Known: ${allTemplates().map((t) => t.name).join(', ')}.`);
    }
    const output = values.sql !== undefined ? sqlFor(templates, values.sql as SqlDialect) : `${JSON.stringify(jsonSchemaFor(templates), null, 2)}\n`;
    if (values.out === undefined) process.stdout.write(output);
    else {
      writeFileSync(values.out, output);
      console.log(`wrote ${values.sql !== undefined ? `${values.sql} tables` : 'JSON Schema'} for ${templates.map((t) => t.name).join(', ')} to ${values.out}`);
    }
    return 0;
  });
}
