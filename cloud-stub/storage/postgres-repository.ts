// Storage on PostgreSQL (DATABASE_URL), for deployments where several cloud-stub processes share
// one database. Same contract as the SQLite file; uniqueness and versions are enforced by the
// database, so two processes can never both accept the same event or the same desired version.
import pg from 'pg';
import {
  type CloudMessage,
  type DeviceRecord,
  type DeviceState,
  type EnqueueMessageResult,
  type EventInput,
  type EventQuery,
  type IngestBatch,
  type IngestResult,
  type MessageStatus,
  type PatchDesiredResult,
  type QueueDepths,
  type ReportedUpdate,
  type Repository,
  type RpcRequest,
  type RpcStatus,
  type StoredEvent,
  type StateChange,
  type DownstreamCursor,
  type DownstreamStream,
  type DeadLetter,
} from './repository.ts';

export const postgresSchema = `
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL,
  last_seen_at_ms BIGINT,
  desired_version BIGINT NOT NULL DEFAULT 0,
  message_seq BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  template_id TEXT NOT NULL,
  ts BIGINT NOT NULL,
  fields JSONB NOT NULL,
  received_at_ms BIGINT NOT NULL,
  UNIQUE (device_id, epoch, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (device_id, ts, id);
CREATE TABLE IF NOT EXISTS state (
  device_id TEXT NOT NULL,
  key TEXT NOT NULL,
  reported_value JSONB,
  reported_version BIGINT,
  reported_ts BIGINT,
  desired_value JSONB,
  desired_version BIGINT,
  desired_ts BIGINT,
  PRIMARY KEY (device_id, key)
);
CREATE TABLE IF NOT EXISTS c2d_messages (
  device_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  body JSONB NOT NULL,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX IF NOT EXISTS c2d_messages_open ON c2d_messages (status, expires_at_ms);
CREATE TABLE IF NOT EXISTS rpc_requests (
  device_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  route TEXT NOT NULL,
  args JSONB,
  status TEXT NOT NULL,
  result JSONB,
  created_at_ms BIGINT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (device_id, idempotency_key)
);
CREATE TABLE IF NOT EXISTS state_changes (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id TEXT NOT NULL,
  side TEXT NOT NULL,
  key TEXT NOT NULL,
  value JSONB,
  version BIGINT NOT NULL,
  ts BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS downstream_cursors (
  route TEXT PRIMARY KEY,
  event_id BIGINT NOT NULL,
  state_change_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS downstream_dead_letters (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  route TEXT NOT NULL,
  stream TEXT NOT NULL,
  first_id BIGINT NOT NULL,
  last_id BIGINT NOT NULL,
  payload JSONB NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS downstream_dead_letters_by_route ON downstream_dead_letters (route, id);
`;

// Downstream routes read the events table and the state-change log in id order behind a cursor.
// An identity id is taken at INSERT, but transactions of several processes may commit in another
// order, and a reader could pass a lower id that commits later. Writers of each log therefore
// hold a transaction-scoped advisory lock, so ids become visible in the order they were taken.
const eventLogLock = "SELECT pg_advisory_xact_lock(hashtext('tandem-event-log'))";
const stateLogLock = "SELECT pg_advisory_xact_lock(hashtext('tandem-state-log'))";

type Row = Record<string, unknown>;

// BIGINT comes back from pg as a string (it may exceed 2^53); every value we store there is a
// millisecond time, a version or a sequence, all far below 2^53.
function num(value: unknown): number {
  return Number(value);
}

function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function toEvent(row: Row): StoredEvent {
  return {
    id: num(row.id),
    deviceId: row.device_id as string,
    epoch: num(row.epoch),
    seq: num(row.seq),
    templateId: row.template_id as string,
    ts: num(row.ts),
    fields: row.fields,
    receivedAtMs: num(row.received_at_ms),
  };
}

function toDevice(row: Row): DeviceRecord {
  return {
    deviceId: row.device_id as string,
    createdAtMs: num(row.created_at_ms),
    lastSeenAtMs: numOrNull(row.last_seen_at_ms),
    desiredVersion: num(row.desired_version),
    messageSeq: num(row.message_seq),
  };
}

function toMessage(row: Row): CloudMessage {
  return {
    deviceId: row.device_id as string,
    seq: num(row.seq),
    body: row.body,
    createdAtMs: num(row.created_at_ms),
    expiresAtMs: num(row.expires_at_ms),
    status: row.status as MessageStatus,
  };
}

function toRpc(row: Row): RpcRequest {
  return {
    deviceId: row.device_id as string,
    idempotencyKey: row.idempotency_key as string,
    route: row.route as string,
    args: row.args ?? null,
    status: row.status as RpcStatus,
    result: row.result ?? null,
    createdAtMs: num(row.created_at_ms),
    expiresAtMs: num(row.expires_at_ms),
  };
}

/** JSON text for a JSONB parameter; pg would turn arrays into PostgreSQL arrays otherwise. */
function jsonParam(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

export interface PostgresRepositoryOptions {
  connectionString: string;
  /** A schema to keep the tables in (created when absent); tests use a unique one per run. */
  schema?: string;
  poolSize?: number;
}

export class PostgresRepository implements Repository {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.pool = pool;
  }

  /** Connects, creates the schema and tables when absent, and returns the repository. */
  static async open(options: PostgresRepositoryOptions): Promise<PostgresRepository> {
    const schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name '${schema}'`);
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 8,
      options: `-c search_path=${schema}`,
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    try {
      // Several processes may start at once: CREATE ... IF NOT EXISTS is not safe against itself,
      // so schema creation is serialised with an advisory lock.
      const client = await pool.connect();
      try {
        await client.query("SELECT pg_advisory_lock(hashtext('tandem-schema'))");
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(postgresSchema);
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('tandem-schema'))").catch(() => {});
        client.release();
      }
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new PostgresRepository(pool);
  }

  private async transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // pg-pool listens for errors only on idle clients: a connection lost while this one is checked
    // out would emit an unhandled 'error' and end the process. The failing query rejects anyway.
    const onError = (): void => {};
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.off('error', onError);
      client.release();
    }
  }

  async createDevice(deviceId: string, secretHash: string, nowMs: number): Promise<boolean> {
    const result = await this.pool.query(
      'INSERT INTO devices (device_id, secret_hash, created_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [deviceId, secretHash, nowMs],
    );
    return result.rowCount === 1;
  }

  async replaceDeviceSecret(deviceId: string, secretHash: string): Promise<boolean> {
    const result = await this.pool.query('UPDATE devices SET secret_hash = $1 WHERE device_id = $2', [secretHash, deviceId]);
    return result.rowCount === 1;
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | null> {
    const result = await this.pool.query('SELECT * FROM devices WHERE device_id = $1', [deviceId]);
    return result.rows.length === 0 ? null : toDevice(result.rows[0] as Row);
  }

  async getDeviceSecretHash(deviceId: string): Promise<string | null> {
    const result = await this.pool.query('SELECT secret_hash FROM devices WHERE device_id = $1', [deviceId]);
    return result.rows.length === 0 ? null : ((result.rows[0] as Row).secret_hash as string);
  }

  async listDevices(): Promise<DeviceRecord[]> {
    const result = await this.pool.query('SELECT * FROM devices ORDER BY device_id');
    return (result.rows as Row[]).map(toDevice);
  }

  async markDeviceSeen(deviceId: string, nowMs: number): Promise<void> {
    await this.pool.query('UPDATE devices SET last_seen_at_ms = $1 WHERE device_id = $2', [nowMs, deviceId]);
  }

  private async insertBatch(client: pg.PoolClient, batch: IngestBatch, nowMs: number): Promise<IngestResult> {
    // One statement per batch: the rows travel as four arrays, so a 50-event batch is one round trip.
    const result = await client.query(
      `INSERT INTO events (device_id, epoch, seq, template_id, ts, fields, received_at_ms)
       SELECT $1, $2, u.seq, u.template_id, u.ts, u.fields::jsonb, $7
       FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS u(seq, template_id, ts, fields)
       ON CONFLICT (device_id, epoch, seq) DO NOTHING RETURNING seq`,
      [
        batch.deviceId,
        batch.epoch,
        batch.rows.map((row) => row.seq),
        batch.rows.map((row) => row.templateId),
        batch.rows.map((row) => row.ts),
        batch.rows.map((row) => jsonParam(row.fields)),
        nowMs,
      ],
    );
    const returned = new Set<number>((result.rows as Row[]).map((row) => num(row.seq)));
    const insertedSeqs: number[] = [];
    for (const row of batch.rows) {
      // A seq repeated inside one batch is inserted once: only its first occurrence counts as new.
      if (returned.delete(row.seq)) insertedSeqs.push(row.seq);
    }
    return { inserted: insertedSeqs.length, duplicates: batch.rows.length - insertedSeqs.length, insertedSeqs };
  }

  async ingestEvents(deviceId: string, epoch: number, rows: EventInput[], nowMs: number): Promise<IngestResult> {
    const results = await this.ingestBatches([{ deviceId, epoch, rows }], nowMs);
    return results[0]!;
  }

  async ingestBatches(batches: IngestBatch[], nowMs: number): Promise<IngestResult[]> {
    return this.transaction(async (client) => {
      await client.query(eventLogLock);
      const results: IngestResult[] = [];
      for (const batch of batches) results.push(await this.insertBatch(client, batch, nowMs));
      return results;
    });
  }

  async listEvents(deviceId: string, query: EventQuery): Promise<StoredEvent[]> {
    const where = ['device_id = $1'];
    const params: (string | number)[] = [deviceId];
    const next = (value: string | number): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.fromTs !== undefined) where.push(`ts >= ${next(query.fromTs)}`);
    if (query.toTs !== undefined) where.push(`ts < ${next(query.toTs)}`);
    if (query.after !== undefined) {
      const ts = next(query.after.ts);
      where.push(`(ts > ${ts} OR (ts = ${ts} AND id > ${next(query.after.id)}))`);
    }
    const limit = next(query.limit);
    const result = await this.pool.query(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY ts, id LIMIT ${limit}`, params);
    return (result.rows as Row[]).map(toEvent);
  }

  async countEvents(deviceId: string): Promise<number> {
    const result = await this.pool.query('SELECT count(*) AS n FROM events WHERE device_id = $1', [deviceId]);
    return num((result.rows[0] as Row).n);
  }

  async getState(deviceId: string): Promise<DeviceState | null> {
    const device = await this.getDevice(deviceId);
    if (device === null) return null;
    const result = await this.pool.query('SELECT * FROM state WHERE device_id = $1 ORDER BY key', [deviceId]);
    return {
      deviceId,
      desiredVersion: device.desiredVersion,
      entries: (result.rows as Row[]).map((row) => ({
        key: row.key as string,
        reportedValue: row.reported_value ?? null,
        reportedVersion: numOrNull(row.reported_version),
        reportedTs: numOrNull(row.reported_ts),
        desiredValue: row.desired_value ?? null,
        desiredVersion: numOrNull(row.desired_version),
        desiredTs: numOrNull(row.desired_ts),
      })),
    };
  }

  async patchDesired(deviceId: string, expectedVersion: number, values: Record<string, unknown>, nowMs: number): Promise<PatchDesiredResult> {
    return this.transaction(async (client): Promise<PatchDesiredResult> => {
      // The conditional UPDATE both checks the version and locks the device row, so two
      // processes patching at once cannot both win.
      const bumped = await client.query(
        'UPDATE devices SET desired_version = desired_version + 1 WHERE device_id = $1 AND desired_version = $2 RETURNING desired_version',
        [deviceId, expectedVersion],
      );
      if (bumped.rows.length === 0) {
        const device = await client.query('SELECT desired_version FROM devices WHERE device_id = $1', [deviceId]);
        return device.rows.length === 0
          ? { outcome: 'unknown-device' }
          : { outcome: 'conflict', desiredVersion: num((device.rows[0] as Row).desired_version) };
      }
      const version = num((bumped.rows[0] as Row).desired_version);
      await client.query(stateLogLock);
      for (const key of Object.keys(values)) {
        await client.query('INSERT INTO state_changes (device_id, side, key, value, version, ts) VALUES ($1, $2, $3, $4::jsonb, $5, $6)', [
          deviceId, 'desired', key, jsonParam(values[key]), version, nowMs,
        ]);
        await client.query(
          `INSERT INTO state (device_id, key, desired_value, desired_version, desired_ts) VALUES ($1, $2, $3::jsonb, $4, $5)
           ON CONFLICT (device_id, key) DO UPDATE SET desired_value = excluded.desired_value,
             desired_version = excluded.desired_version, desired_ts = excluded.desired_ts`,
          [deviceId, key, jsonParam(values[key]), version, nowMs],
        );
      }
      return { outcome: 'applied', desiredVersion: version };
    });
  }

  async applyReported(deviceId: string, updates: ReportedUpdate[]): Promise<string[]> {
    return this.transaction(async (client) => {
      if (updates.length > 0) await client.query(stateLogLock);
      const applied: string[] = [];
      for (const update of updates) {
        const result = await client.query(
          `INSERT INTO state (device_id, key, reported_value, reported_version, reported_ts) VALUES ($1, $2, $3::jsonb, $4, $5)
           ON CONFLICT (device_id, key) DO UPDATE SET reported_value = excluded.reported_value,
             reported_version = excluded.reported_version, reported_ts = excluded.reported_ts
           WHERE state.reported_version IS NULL OR state.reported_version < excluded.reported_version
           RETURNING key`,
          [deviceId, update.key, jsonParam(update.value), update.version, update.ts],
        );
        if (result.rows.length === 1) {
          applied.push(update.key);
          await client.query('INSERT INTO state_changes (device_id, side, key, value, version, ts) VALUES ($1, $2, $3, $4::jsonb, $5, $6)', [
            deviceId, 'reported', update.key, jsonParam(update.value), update.version, update.ts,
          ]);
        }
      }
      return applied;
    });
  }

  async enqueueMessage(deviceId: string, body: unknown, ttlSec: number, nowMs: number, queuedMax: number): Promise<EnqueueMessageResult> {
    return this.transaction(async (client): Promise<EnqueueMessageResult> => {
      // Locking the device row first serialises enqueues per device across processes, so the
      // queue bound and the sequence stay exact.
      const device = await client.query('SELECT message_seq FROM devices WHERE device_id = $1 FOR UPDATE', [deviceId]);
      if (device.rows.length === 0) return { outcome: 'unknown-device' };
      const open = await client.query("SELECT count(*) AS n FROM c2d_messages WHERE device_id = $1 AND status IN ('queued', 'delivered')", [
        deviceId,
      ]);
      if (num((open.rows[0] as Row).n) >= queuedMax) return { outcome: 'queue-full' };
      const seq = num((device.rows[0] as Row).message_seq) + 1;
      await client.query('UPDATE devices SET message_seq = $1 WHERE device_id = $2', [seq, deviceId]);
      await client.query(
        "INSERT INTO c2d_messages (device_id, seq, body, created_at_ms, expires_at_ms, status) VALUES ($1, $2, $3::jsonb, $4, $5, 'queued')",
        [deviceId, seq, jsonParam(body), nowMs, nowMs + ttlSec * 1000],
      );
      return { outcome: 'queued', seq };
    });
  }

  async listMessages(deviceId: string): Promise<CloudMessage[]> {
    const result = await this.pool.query('SELECT * FROM c2d_messages WHERE device_id = $1 ORDER BY seq', [deviceId]);
    return (result.rows as Row[]).map(toMessage);
  }

  async pendingMessages(deviceId: string, afterSeq: number, nowMs: number, limit: number): Promise<CloudMessage[]> {
    const result = await this.pool.query(
      "SELECT * FROM c2d_messages WHERE device_id = $1 AND seq > $2 AND status IN ('queued', 'delivered') AND expires_at_ms > $3 ORDER BY seq LIMIT $4",
      [deviceId, afterSeq, nowMs, limit],
    );
    return (result.rows as Row[]).map(toMessage);
  }

  async markMessagesDelivered(deviceId: string, seqs: number[]): Promise<void> {
    await this.pool.query("UPDATE c2d_messages SET status = 'delivered' WHERE device_id = $1 AND seq = ANY($2::bigint[]) AND status = 'queued'", [
      deviceId,
      seqs,
    ]);
  }

  async ackMessages(deviceId: string, uptoSeq: number): Promise<number> {
    const result = await this.pool.query(
      "UPDATE c2d_messages SET status = 'acked' WHERE device_id = $1 AND seq <= $2 AND status IN ('queued', 'delivered')",
      [deviceId, uptoSeq],
    );
    return result.rowCount ?? 0;
  }

  async expireMessages(nowMs: number): Promise<CloudMessage[]> {
    const result = await this.pool.query(
      "UPDATE c2d_messages SET status = 'expired' WHERE status IN ('queued', 'delivered') AND expires_at_ms <= $1 RETURNING *",
      [nowMs],
    );
    return (result.rows as Row[])
      .map(toMessage)
      .sort((a, b) => (a.deviceId === b.deviceId ? a.seq - b.seq : a.deviceId < b.deviceId ? -1 : 1));
  }

  async purgeMessages(beforeMs: number): Promise<number> {
    const result = await this.pool.query("DELETE FROM c2d_messages WHERE status IN ('acked', 'expired') AND created_at_ms < $1", [beforeMs]);
    return result.rowCount ?? 0;
  }

  async createRpcRequest(request: Omit<RpcRequest, 'status' | 'result'>): Promise<{ created: boolean; request: RpcRequest }> {
    const inserted = await this.pool.query(
      `INSERT INTO rpc_requests (device_id, idempotency_key, route, args, status, result, created_at_ms, expires_at_ms)
       VALUES ($1, $2, $3, $4::jsonb, 'pending', NULL, $5, $6) ON CONFLICT DO NOTHING`,
      [request.deviceId, request.idempotencyKey, request.route, request.args === undefined ? null : jsonParam(request.args), request.createdAtMs, request.expiresAtMs],
    );
    const stored = await this.getRpcRequest(request.deviceId, request.idempotencyKey);
    if (stored === null) throw new Error('rpc request vanished right after insert');
    return { created: inserted.rowCount === 1, request: stored };
  }

  async getRpcRequest(deviceId: string, idempotencyKey: string): Promise<RpcRequest | null> {
    const result = await this.pool.query('SELECT * FROM rpc_requests WHERE device_id = $1 AND idempotency_key = $2', [deviceId, idempotencyKey]);
    return result.rows.length === 0 ? null : toRpc(result.rows[0] as Row);
  }

  async completeRpcRequest(deviceId: string, idempotencyKey: string, status: RpcStatus, result: unknown): Promise<boolean> {
    const updated = await this.pool.query('UPDATE rpc_requests SET status = $1, result = $2::jsonb WHERE device_id = $3 AND idempotency_key = $4', [
      status,
      result === undefined ? null : jsonParam(result),
      deviceId,
      idempotencyKey,
    ]);
    return updated.rowCount === 1;
  }

  async listRpcRequests(deviceId: string, limit: number): Promise<RpcRequest[]> {
    const result = await this.pool.query('SELECT * FROM rpc_requests WHERE device_id = $1 ORDER BY created_at_ms DESC, idempotency_key DESC LIMIT $2', [deviceId, limit]);
    return (result.rows as Row[]).map(toRpc);
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    const result = await this.pool.query('SELECT * FROM events WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit]);
    return (result.rows as Row[]).map(toEvent);
  }

  async stateChangesAfter(afterId: number, limit: number): Promise<StateChange[]> {
    const result = await this.pool.query('SELECT * FROM state_changes WHERE id > $1 ORDER BY id LIMIT $2', [afterId, limit]);
    return (result.rows as Row[]).map((row) => ({
      id: num(row.id),
      deviceId: row.device_id as string,
      side: row.side as StateChange['side'],
      key: row.key as string,
      value: row.value ?? null,
      version: num(row.version),
      ts: num(row.ts),
    }));
  }

  async downstreamHeads(): Promise<DownstreamCursor> {
    const result = await this.pool.query('SELECT (SELECT coalesce(max(id), 0) FROM events) AS e, (SELECT coalesce(max(id), 0) FROM state_changes) AS s');
    const row = result.rows[0] as Row;
    return { eventId: num(row.e), stateChangeId: num(row.s) };
  }

  async openDownstreamCursor(route: string, initial: DownstreamCursor): Promise<DownstreamCursor> {
    await this.pool.query('INSERT INTO downstream_cursors (route, event_id, state_change_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
      route, initial.eventId, initial.stateChangeId,
    ]);
    const result = await this.pool.query('SELECT event_id, state_change_id FROM downstream_cursors WHERE route = $1', [route]);
    const row = result.rows[0] as Row;
    return { eventId: num(row.event_id), stateChangeId: num(row.state_change_id) };
  }

  async advanceDownstreamCursor(route: string, stream: DownstreamStream, id: number, deadLetter?: Omit<DeadLetter, 'id'>): Promise<void> {
    const column = stream === 'events' ? 'event_id' : 'state_change_id';
    await this.transaction(async (client) => {
      if (deadLetter !== undefined) {
        await client.query(
          `INSERT INTO downstream_dead_letters (route, stream, first_id, last_id, payload, error, attempts, created_at_ms)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)`,
          [deadLetter.route, deadLetter.stream, deadLetter.firstId, deadLetter.lastId, jsonParam(deadLetter.payload), deadLetter.error, deadLetter.attempts, deadLetter.createdAtMs],
        );
      }
      await client.query(`UPDATE downstream_cursors SET ${column} = GREATEST(${column}, $1) WHERE route = $2`, [id, route]);
    });
  }

  async listDeadLetters(route: string, afterId: number, limit: number): Promise<DeadLetter[]> {
    const result = await this.pool.query('SELECT * FROM downstream_dead_letters WHERE route = $1 AND id > $2 ORDER BY id LIMIT $3', [route, afterId, limit]);
    return (result.rows as Row[]).map((row) => ({
      id: num(row.id),
      route: row.route as string,
      stream: row.stream as DownstreamStream,
      firstId: num(row.first_id),
      lastId: num(row.last_id),
      payload: row.payload,
      error: row.error as string,
      attempts: num(row.attempts),
      createdAtMs: num(row.created_at_ms),
    }));
  }

  async purgeStateChanges(beforeTs: number): Promise<number> {
    const result = await this.pool.query(
      'DELETE FROM state_changes WHERE ts < $1 AND id <= coalesce((SELECT min(state_change_id) FROM downstream_cursors), 9007199254740991)',
      [beforeTs],
    );
    return result.rowCount ?? 0;
  }

  async countDeadLetters(route: string): Promise<number> {
    const result = await this.pool.query('SELECT count(*) AS n FROM downstream_dead_letters WHERE route = $1', [route]);
    return num((result.rows[0] as Row).n);
  }

  async queueDepths(): Promise<QueueDepths> {
    const result = await this.pool.query(
      `SELECT (SELECT count(*) FROM c2d_messages WHERE status IN ('queued', 'delivered')) AS messages,
              (SELECT count(*) FROM rpc_requests WHERE status IN ('pending', 'running')) AS rpc`,
    );
    const row = result.rows[0] as Row;
    return { messagesQueued: num(row.messages), rpcPending: num(row.rpc) };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Drops a schema and everything in it: test clean-up only. */
export async function dropPostgresSchema(connectionString: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name '${schema}'`);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

