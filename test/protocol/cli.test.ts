// `tandem codec` and `tandem schema` [WIRE-60][WIRE-24]: NDJSON round trips through frame files,
// errors that name record, line and field, and generated SQL applied to real SQLite and
// PostgreSQL databases, whose constraints then hold the templates' ranges.
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { allTemplates, powerMeterTemplate, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { run as codec } from '../../scripts/commands/codec.ts';
import { jsonSchemaFor, run as schema, sqlFor, tableName } from '../../scripts/commands/schema.ts';
import { powerMeterStream, referenceTelemetryStream } from './streams.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tandem-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Runs a command, capturing what it prints. */
async function capture(command: (args: string[]) => Promise<number>, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => void (out += `${parts.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => void (err += `${parts.join(' ')}\n`));
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const code = await command(args);
  vi.restoreAllMocks();
  return { code, out, err };
}

const ndjson = (records: object[]) => records.map((record) => JSON.stringify(record)).join('\n') + '\n';

describe('tandem codec [WIRE-60]', () => {
  it('encode then decode gives the same NDJSON back, byte for byte (telemetry and power-meter)', async () => {
    for (const [template, records] of [[telemetryTemplate, referenceTelemetryStream(3, 1000)], [powerMeterTemplate, powerMeterStream(3, 500)]] as const) {
      const input = join(dir, `${template.name}.ndjson`);
      writeFileSync(input, ndjson(records));
      const encoded = await capture(codec, ['encode', '--template', template.name, '--in', input, '--out', join(dir, 'batch.bin')]);
      expect(encoded.code, encoded.err).toBe(0);
      expect(encoded.out).toMatch(new RegExp(`encoded ${records.length} records as ${template.name} v1`));
      const decoded = await capture(codec, ['decode', '--in', join(dir, 'batch.bin'), '--out', join(dir, 'back.ndjson')]);
      expect(decoded.code, decoded.err).toBe(0);
      expect(readFileSync(join(dir, 'back.ndjson'), 'utf8')).toBe(readFileSync(input, 'utf8'));
    }
  });

  it('a record outside its template is an error naming record, line and field; nothing is written', async () => {
    const input = join(dir, 'bad.ndjson');
    const good = { ts: 1764201600000, temp: 21.5, hum: 45, batt: 3950 };
    writeFileSync(input, `${JSON.stringify(good)}\n\n${JSON.stringify({ ...good, batt: 6001 })}\n`);
    const result = await capture(codec, ['encode', '--template', 'telemetry', '--in', input, '--out', join(dir, 'never.bin')]);
    expect(result.code).toBe(1);
    expect(result.err.trim()).toBe(`tandem codec encode: ${input}: record 2 (line 3) field batt: 6001 is out of range (0..6000)`);
    expect(() => readFileSync(join(dir, 'never.bin'))).toThrow();
    writeFileSync(input, `${JSON.stringify(good)}\n{"ts": 1,\n`);
    expect((await capture(codec, ['encode', '--template', 'telemetry', '--in', input, '--out', join(dir, 'never.bin')])).err).toMatch(/record 2 \(line 2\): not JSON/);
  });

  it('untemplated records round trip too, with Unicode text', async () => {
    const records = [{ event: 'boot', reason: 'power-on', ok: true }, { event: 'note', text: 'température 21 °C ✓', values: [1, 2.5, null] }];
    writeFileSync(join(dir, 'loose.ndjson'), ndjson(records));
    expect((await capture(codec, ['encode', '--untemplated', '--in', join(dir, 'loose.ndjson'), '--out', join(dir, 'loose.bin')])).code).toBe(0);
    const decoded = await capture(codec, ['decode', '--in', join(dir, 'loose.bin')]);
    expect(decoded.out).toBe(ndjson(records));
  });

  it('a damaged frame file fails with the frame number and what is wrong', async () => {
    writeFileSync(join(dir, 'one.ndjson'), ndjson(referenceTelemetryStream(1, 20)));
    await capture(codec, ['encode', '--template', 'telemetry', '--in', join(dir, 'one.ndjson'), '--out', join(dir, 'one.bin')]);
    const bytes = readFileSync(join(dir, 'one.bin'));
    bytes[10] ^= 1;
    writeFileSync(join(dir, 'damaged.bin'), bytes);
    const result = await capture(codec, ['decode', '--in', join(dir, 'damaged.bin')]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/frame 1: crc mismatch/);
  });

  it('bad usage is one line and exit code 2', async () => {
    expect((await capture(codec, ['encode', '--template', 'nope', '--in', join(dir, 'one.ndjson'), '--out', 'x'])).err).toMatch(/no template 'nope'. Known: telemetry/);
    expect((await capture(codec, ['encode', '--in', 'x', '--out', 'y'])).code).toBe(2);
    expect((await capture(codec, ['frobnicate'])).code).toBe(2);
    expect((await capture(codec, ['decode', '--in', join(dir, 'missing.bin')])).err).toMatch(/cannot read .*missing.bin: ENOENT/);
  });
});

describe('tandem schema', () => {
  it('--json-schema describes every template with types, ranges and enums', async () => {
    const result = await capture(schema, ['--json-schema']);
    expect(result.code).toBe(0);
    const document = JSON.parse(result.out) as { $defs: Record<string, { required: string[]; properties: Record<string, Record<string, unknown>> }> };
    expect(Object.keys(document.$defs)).toEqual(allTemplates().map((t) => t.name));
    const meter = document.$defs['power-meter'];
    expect(meter.required).toHaveLength(10);
    expect(meter.properties.state).toMatchObject({ type: 'string', enum: ['idle', 'running', 'overload', 'fault'] });
    expect(meter.properties.power).toMatchObject({ type: 'integer', minimum: -30000, maximum: 30000 });
    expect(meter.properties.voltage).toMatchObject({ type: 'number', minimum: 0, maximum: 300, 'x-resolution': 0.1 });
    expect(jsonSchemaFor([telemetryTemplate]).$defs).toHaveProperty('telemetry.properties.ts.x-resolution-ms', 1000);
  });

  it('--sql sqlite creates tables whose constraints hold the templates', () => {
    const db = new Database(':memory:');
    db.exec(sqlFor(allTemplates(), 'sqlite'));
    const insert = db.prepare(`INSERT INTO "${tableName(powerMeterTemplate)}" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const rows = powerMeterStream(5, 50);
    rows.forEach((row, seq) => insert.run('dev-1', 1, seq, row.ts, row.voltage, row.current, row.power, row.energy, row.frequency, row.pf, row.temp, row.state, row.relay ? 1 : 0));
    expect(db.prepare(`SELECT count(*) AS n FROM "power_meter_v1"`).get()).toEqual({ n: 50 });
    const row = rows[0];
    expect(() => insert.run('dev-1', 1, 99, row.ts, 301, row.current, row.power, row.energy, row.frequency, row.pf, row.temp, row.state, 1)).toThrow(/CHECK constraint/);
    expect(() => insert.run('dev-1', 1, 99, row.ts, row.voltage, row.current, row.power, row.energy, row.frequency, row.pf, row.temp, 'asleep', 1)).toThrow(/CHECK constraint/);
    expect(() => insert.run('dev-1', 1, 0, row.ts, row.voltage, row.current, row.power, row.energy, row.frequency, row.pf, row.temp, row.state, 1)).toThrow(/UNIQUE|PRIMARY/);
    db.close();
  });

  it('--sql postgres creates typed tables in PostgreSQL with the same constraints', async () => {
    const client = new pg.Client({ host: '127.0.0.1', port: 5432, database: 'test', user: process.env.PGUSER ?? 'postgres' });
    await client.connect();
    const schemaName = `wire_schema_${process.pid}_${Date.now()}`;
    try {
      await client.query(`CREATE SCHEMA ${schemaName}; SET search_path TO ${schemaName}`);
      await client.query(sqlFor(allTemplates(), 'postgres'));
      const insert = `INSERT INTO telemetry_v1 VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), $5, $6, $7)`;
      for (const [seq, row] of referenceTelemetryStream(2, 20).entries()) await client.query(insert, ['dev-1', 1, seq, row.ts, row.temp, row.hum, row.batt]);
      const types = await client.query(`SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'telemetry_v1' ORDER BY ordinal_position`, [schemaName]);
      expect(types.rows.map((r: { data_type: string }) => r.data_type)).toEqual(['text', 'bigint', 'bigint', 'timestamp with time zone', 'numeric', 'smallint', 'smallint']);
      const stored = await client.query(`SELECT temp::text AS temp FROM telemetry_v1 ORDER BY seq LIMIT 1`);
      expect(stored.rows[0].temp).toBe(referenceTelemetryStream(2, 1)[0].temp.toFixed(1));
      await expect(client.query(insert, ['dev-1', 1, 100, 1764201600000, 125.1, 45, 3950])).rejects.toThrow(/check constraint/);
      await expect(client.query(`INSERT INTO power_meter_v1 VALUES ('d', 1, 1, now(), 230, 1, 100, 5, 50, 0.9, 30, 'asleep', true)`)).rejects.toThrow(/check constraint/);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schemaName} CASCADE`);
      await client.end();
    }
  });

  it('bad usage is one line and exit code 2', async () => {
    expect((await capture(schema, [])).code).toBe(2);
    expect((await capture(schema, ['--sql', 'mysql'])).err).toMatch(/--sql takes sqlite or postgres, got 'mysql'/);
    expect((await capture(schema, ['--json-schema', '--template', 'nope'])).err).toMatch(/no template 'nope'/);
  });
});
