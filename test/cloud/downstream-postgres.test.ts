// The PostgreSQL downstream route against the PostgreSQL on 127.0.0.1 (database `test`), with the
// cloud itself on PostgreSQL too (so the cursor, state-change log and dead-letter methods run on
// both stores): typed tables from the templates' generated DDL, rows deduplicated on
// (device, epoch, seq), untyped leftovers, and a database that is unreachable at first and then
// comes up (nothing lost, ingest never waits). Schemas are unique per test and dropped after.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDownstreamConfig } from '../../cloud-stub/downstream/config.ts';
import { PostgresTypedDestination } from '../../cloud-stub/downstream/postgres-typed.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { dropPostgresSchema } from '../../cloud-stub/storage/postgres-repository.ts';
import type { EventInput, StoredEvent } from '../../cloud-stub/storage/repository.ts';
import { allTemplates } from '../../firmware/protocol/templates/index.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const connectionString = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function uniqueSchema(): string {
  const schema = `tandem_test_${randomBytes(6).toString('hex')}`;
  cleanups.push(() => dropPostgresSchema(connectionString, schema));
  return schema;
}

async function query(schema: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

const t0 = Date.UTC(2026, 10, 27, 12, 0, 0);

function telemetry(fromSeq: number, count: number): EventInput[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: fromSeq + i,
    templateId: 'telemetry',
    ts: t0 + (fromSeq + i) * 1000,
    fields: { ts: t0 + (fromSeq + i) * 1000, temp: 21.5 + i / 10, hum: 40 + i, batt: 3700 },
  }));
}

async function cloudOn(cloudSchema: string, routesValue: unknown): Promise<RunningCloud> {
  const temp = temporaryDir('tandem-downstream-pg-');
  cleanups.push(() => temp.remove());
  const cloud = await startCloud({
    dataDir: temp.dir, mqttPort: 0, httpPort: 0, mqttHost: '127.0.0.1', httpHost: '127.0.0.1', log: () => {},
    databaseUrl: connectionString, databaseSchema: cloudSchema,
    session: () => ({ handleUplink: async () => {} }),
    downstreamRoutes: parseDownstreamConfig(routesValue, temp.dir, {}), downstreamPollMs: 50,
  });
  cleanups.push(() => cloud.stop());
  return cloud;
}

describe('PostgreSQL typed-table route', () => {
  it('writes typed rows per template, untyped leftovers and state changes, each once', async () => {
    const cloudSchema = uniqueSchema();
    const typedSchema = uniqueSchema();
    const cloud = await cloudOn(cloudSchema, { routes: { warehouse: { type: 'postgres', url: connectionString, schema: typedSchema } } });
    await cloud.context.ingest.ingest('dev-1', 3, telemetry(1, 20));
    await cloud.context.ingest.ingest('dev-1', 3, [
      { seq: 21, templateId: 'untemplated', ts: t0, fields: { free: ['form'] } },
      // Fields that do not fit the template (hum out of range) go untyped rather than failing the batch.
      { seq: 22, templateId: 'telemetry', ts: t0, fields: { ts: t0, temp: 20, hum: 400, batt: 3700 } },
    ]);
    await cloud.context.repository.createDevice('dev-1', 'x', t0);
    await cloud.context.repository.patchDesired('dev-1', 0, { interval: 60 }, t0);
    cloud.downstream!.notify();
    await waitFor(async () => {
      const [status] = await cloud.downstream!.status();
      return status!.lag.events === 0 && status!.lag.stateChanges === 0 && status!.delivered.events === 22;
    }, 8000, 'delivered');

    const rows = await query(typedSchema, 'SELECT device_id, boot_epoch, seq, ts, temp, hum, batt FROM telemetry_v1 ORDER BY seq');
    expect(rows).toHaveLength(20);
    expect(rows[0]).toEqual({ device_id: 'dev-1', boot_epoch: '3', seq: '1', ts: new Date(t0 + 1000), temp: '21.5', hum: 40, batt: 3700 });
    expect(rows[19]!.temp).toBe('23.4');
    const untyped = await query(typedSchema, 'SELECT seq, template_id, fields FROM tandem_untyped_events ORDER BY seq');
    expect(untyped).toEqual([
      { seq: '21', template_id: 'untemplated', fields: { free: ['form'] } },
      { seq: '22', template_id: 'telemetry', fields: { ts: t0, temp: 20, hum: 400, batt: 3700 } },
    ]);
    const changes = await query(typedSchema, 'SELECT device_id, side, key, value, version FROM tandem_state_changes');
    expect(changes).toEqual([{ device_id: 'dev-1', side: 'desired', key: 'interval', value: 60, version: '1' }]);
    // The columns are typed and constrained as the generator says.
    const columns = await query(typedSchema, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'device_status_v1' ORDER BY ordinal_position");
    expect(columns.find((c) => c.column_name === 'connected')!.data_type).toBe('boolean');
    expect(columns.find((c) => c.column_name === 'lastSyncTs')!.data_type).toBe('timestamp with time zone');

    // A redelivery (at-least-once after a crash) adds nothing: (device, epoch, seq) is the key.
    const stored = await cloud.context.repository.eventsAfter(0, 100);
    const destination = new PostgresTypedDestination(connectionString, typedSchema, allTemplates());
    cleanups.push(() => destination.close());
    await destination.deliverEvents(stored as StoredEvent[], new AbortController().signal);
    expect((await query(typedSchema, 'SELECT count(*)::int AS n FROM telemetry_v1'))[0]!.n).toBe(20);
    expect((await query(typedSchema, 'SELECT count(*)::int AS n FROM tandem_untyped_events'))[0]!.n).toBe(2);
  });

  it('an unreachable database delays only its route; when it comes up nothing is lost', async () => {
    // A port nothing listens on yet; later a forwarder to the real PostgreSQL opens on it.
    const placeholder: Server = createServer();
    await new Promise<void>((resolve) => placeholder.listen(0, '127.0.0.1', resolve));
    const port = (placeholder.address() as { port: number }).port;
    await new Promise<void>((resolve) => placeholder.close(() => resolve()));

    const cloudSchema = uniqueSchema();
    const typedSchema = uniqueSchema();
    const url = `postgres://postgres@127.0.0.1:${port}/test`;
    const cloud = await cloudOn(cloudSchema, { routes: { warehouse: { type: 'postgres', url, schema: typedSchema, backoffMs: 20, backoffMsMax: 200 } } });
    for (let batch = 0; batch < 4; batch++) {
      const started = performance.now();
      expect((await cloud.context.ingest.ingest('dev-2', 1, telemetry(batch * 25 + 1, 25))).outcome).toBe('committed');
      expect(performance.now() - started).toBeLessThan(1000);
    }
    await waitFor(async () => (await cloud.downstream!.status())[0]!.failures >= 2, 5000, 'failures');
    expect((await cloud.downstream!.status())[0]!.lag.events).toBe(100);

    const sockets = new Set<Socket>();
    const forwarder = createServer((client) => {
      const upstream = connect(5432, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); forwarder.close(() => resolve()); }));
    await waitFor(async () => (await cloud.downstream!.status())[0]!.lag.events === 0, 8000, 'delivery after recovery');
    const seqs = (await query(typedSchema, 'SELECT seq::int AS seq FROM telemetry_v1 ORDER BY seq')).map((row) => row.seq);
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });
});
