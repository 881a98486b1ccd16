// Typed tables from the templates: the generated DDL runs on SQLite (and PostgreSQL in
// downstream-postgres.test.ts), decoded events become typed rows, and fields that do not fit their
// template are recognised (they go to the untyped table instead of failing a batch).
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { definitionOf, fitsField, stateChangesTableName, typedRow, typedTables, typedTablesDdl, untypedTableName } from '../../cloud-stub/typed-tables.ts';
import type { StoredEvent } from '../../cloud-stub/storage/repository.ts';
import { allTemplates, deviceStatusTemplate } from '../../firmware/protocol/templates/index.ts';

const t0 = Date.UTC(2026, 10, 27, 12, 0, 0);

function event(templateId: string, fields: unknown, seq = 1): StoredEvent {
  return { id: seq, deviceId: 'dev', epoch: 2, seq, templateId, ts: t0, fields, receivedAtMs: t0 };
}

const status = {
  ts: t0, connected: true, lastSyncTs: t0 - 60_000, lastSyncOutcome: 'ok', cacheDepth: 3, cacheBytes: 120, oldestAgeSec: 9,
  drops: 0, duplicates: 1, conflicts: 0, bootEpoch: 2, uptimeSec: 3600,
};

describe('typed tables', () => {
  it('one table per template, named <name>_v<version>, plus the untyped and state-change tables; the SQLite DDL runs', () => {
    const db = new Database(':memory:');
    db.exec(typedTablesDdl(allTemplates(), 'sqlite'));
    const names = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(['telemetry_v1', 'device_status_v1', 'power_meter_v1', untypedTableName, stateChangesTableName]));
    const table = typedTables(allTemplates()).get('device-status')!;
    expect(table.table).toBe('device_status_v1');
    expect(table.columns.slice(0, 4)).toEqual(['device_id', 'boot_epoch', 'seq', 'ts']);
    const row = typedRow(table, event('device-status', status), 'sqlite')!;
    db.prepare(`INSERT INTO "${table.table}" (${table.columns.map((c) => `"${c}"`).join(', ')}) VALUES (${table.columns.map(() => '?').join(', ')})`).run(...(row as Array<string | number>));
    expect(db.prepare('SELECT connected, lastSyncOutcome, uptimeSec FROM device_status_v1').get()).toEqual({ connected: 1, lastSyncOutcome: 'ok', uptimeSec: 3600 });
    // The CHECK constraints of the generator hold: a value out of range is refused by the store too.
    const bad = [...row];
    bad[table.columns.indexOf('cacheBytes')] = 5_000_000;
    bad[2] = 2;
    expect(() => db.prepare(`INSERT INTO "${table.table}" VALUES (${table.columns.map(() => '?').join(', ')})`).run(...(bad as Array<string | number>))).toThrow(/CHECK/);
  });

  it('PostgreSQL rows carry booleans and timestamps as such', () => {
    const table = typedTables(allTemplates()).get('device-status')!;
    const row = typedRow(table, event('device-status', status), 'postgres')!;
    expect(row.slice(0, 5)).toEqual(['dev', 2, 1, new Date(t0), true]);
  });

  it('fields that do not fit the template give no typed row', () => {
    const table = typedTables(allTemplates()).get('device-status')!;
    expect(typedRow(table, event('device-status', { ...status, lastSyncOutcome: 'maybe' }), 'sqlite')).toBeNull();
    expect(typedRow(table, event('device-status', { ...status, cacheDepth: -1 }), 'sqlite')).toBeNull();
    expect(typedRow(table, event('device-status', { ...status, connected: 1 }), 'sqlite')).toBeNull();
    const { uptimeSec: _, ...missing } = status;
    expect(typedRow(table, event('device-status', missing), 'sqlite')).toBeNull();
    expect(typedRow(table, event('device-status', 'text'), 'sqlite')).toBeNull();
  });

  it('checks every field kind against its declaration', () => {
    const def = (name: string) => definitionOf(deviceStatusTemplate.fields.find((f) => definitionOf(f).name === name));
    expect(fitsField(def('ts'), t0)).toBe(true);
    expect(fitsField(def('ts'), -1)).toBe(false);
    expect(fitsField(def('ts'), 1.5)).toBe(false);
    expect(fitsField({ name: 'x', type: 'fixed', min: -40, max: 125, resolution: 0.1 }, 21.5)).toBe(true);
    expect(fitsField({ name: 'x', type: 'fixed', min: -40, max: 125, resolution: 0.1 }, 130)).toBe(false);
    expect(fitsField({ name: 'x', type: 'string', maxLength: 3 }, 'abc')).toBe(true);
    expect(fitsField({ name: 'x', type: 'string', maxLength: 3 }, 'abcé')).toBe(false);
    expect(fitsField({ name: 'x', type: 'int' }, -5)).toBe(true);
    expect(fitsField({ name: 'x', type: 'f32' }, Number.NaN)).toBe(false);
  });
});
