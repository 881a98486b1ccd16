// Typed tables per template: the DDL `tandem schema --sql` generates from the templates, and the
// conversion of a stored event's decoded fields into that table's row, so downstream stores get real
// columns (with the templates' ranges as CHECK constraints) instead of a JSON blob.
import { sqlFor, tableName, type SqlDialect } from '../scripts/commands/schema.ts';
import type { FieldDefinition, Template } from '../firmware/protocol/template.ts';
import { wireTimestampMsMax } from '../firmware/protocol/limits.ts';
import type { StoredEvent } from './storage/repository.ts';

export { tableName };

/** One template's typed table: its name, columns in insert order, and the template. */
export interface TypedTable {
  template: Template;
  table: string;
  /** device_id, boot_epoch, seq, then one column per field. */
  columns: string[];
}

/** What is left over: events whose template is unknown here or whose fields do not fit it. */
export const untypedTableName = 'tandem_untyped_events';
export const stateChangesTableName = 'tandem_state_changes';

/** The typed tables of the templates, by the template name events are stored under. */
export function typedTables(templates: Template[]): Map<string, TypedTable> {
  const byName = new Map<string, TypedTable>();
  for (const template of templates) {
    const known = byName.get(template.name);
    // Events carry the template name; the newest version of a name owns it.
    if (known !== undefined && known.template.version > template.version) continue;
    byName.set(template.name, { template, table: tableName(template), columns: ['device_id', 'boot_epoch', 'seq', ...template.fields.map((field) => definitionOf(field).name)] });
  }
  return byName;
}

/** CREATE TABLE statements: the generated per-template tables plus the untyped and state-change tables. */
export function typedTablesDdl(templates: Template[], dialect: SqlDialect): string {
  const json = dialect === 'postgres' ? 'JSONB' : 'TEXT';
  const big = dialect === 'postgres' ? 'BIGINT' : 'INTEGER';
  return `${sqlFor(templates, dialect)}
CREATE TABLE IF NOT EXISTS "${untypedTableName}" (
  "device_id" TEXT NOT NULL,
  "boot_epoch" ${big} NOT NULL,
  "seq" ${big} NOT NULL,
  "template_id" TEXT NOT NULL,
  "ts" ${big} NOT NULL,
  "fields" ${json} NOT NULL,
  PRIMARY KEY ("device_id", "boot_epoch", "seq")
);
CREATE TABLE IF NOT EXISTS "${stateChangesTableName}" (
  "id" ${big} PRIMARY KEY,
  "device_id" TEXT NOT NULL,
  "side" TEXT NOT NULL,
  "key" TEXT NOT NULL,
  "value" ${json},
  "version" ${big} NOT NULL,
  "ts" ${big} NOT NULL
);
`;
}

export type TypedValue = string | number | boolean | Date;

/**
 * A field as its template file declares it. Compiled templates have carried the declaration both as
 * the field itself and under `definition`; reading it here keeps the cloud off the codec's internals.
 */
export function definitionOf(field: unknown): FieldDefinition {
  const withDefinition = field as { definition?: FieldDefinition };
  return withDefinition.definition ?? (field as FieldDefinition);
}

/** Whether a decoded value fits its field's declaration (type, range, labels, length). */
export function fitsField(def: FieldDefinition, value: unknown): boolean {
  switch (def.type) {
    case 'bool':
      return typeof value === 'boolean';
    case 'uint':
    case 'int': {
      const min = def.min ?? (def.type === 'uint' ? 0 : -2147483648);
      const max = def.max ?? (def.type === 'uint' ? 4294967295 : 2147483647);
      return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
    }
    case 'fixed':
      return typeof value === 'number' && Number.isFinite(value) && value >= (def.min ?? -Infinity) && value <= (def.max ?? Infinity);
    case 'f32':
      return typeof value === 'number' && !Number.isNaN(value);
    case 'enum':
      return typeof value === 'string' && (def.values ?? []).includes(value);
    case 'string':
      return typeof value === 'string' && Buffer.byteLength(value, 'utf8') <= (def.maxLength ?? 0);
    case 'timestamp':
      return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= wireTimestampMsMax;
  }
}

/**
 * The row of an event in its template's typed table, in `columns` order, or null when the fields do
 * not fit the template (a missing field, a wrong type, a value out of range): such an event goes to
 * the untyped table rather than failing the whole batch on a CHECK constraint.
 */
export function typedRow(table: TypedTable, event: StoredEvent, dialect: SqlDialect): TypedValue[] | null {
  if (typeof event.fields !== 'object' || event.fields === null) return null;
  const fields = event.fields as Record<string, unknown>;
  const row: TypedValue[] = [event.deviceId, event.epoch, event.seq];
  for (const field of table.template.fields) {
    const def = definitionOf(field);
    const value = fields[def.name];
    if (!fitsField(def, value)) return null;
    if (def.type === 'bool') row.push(dialect === 'postgres' ? value === true : value === true ? 1 : 0);
    else if (def.type === 'timestamp') row.push(dialect === 'postgres' ? new Date(value as number) : (value as number));
    else row.push(value as string | number);
  }
  return row;
}
