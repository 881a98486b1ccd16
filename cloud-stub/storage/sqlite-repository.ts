// The embedded storage: one SQLite file (better-sqlite3, WAL) in the data directory. Calls are
// synchronous underneath, so each transaction is kept small by the ingest group commit.
import Database from 'better-sqlite3';
import { open, type FileHandle } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  fromJsonText,
  toJsonText,
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

export const sqliteSchema = `
CREATE TABLE IF NOT EXISTS devices (
  device_id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  last_seen_at_ms INTEGER,
  desired_version INTEGER NOT NULL DEFAULT 0,
  message_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  template_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  fields TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL,
  UNIQUE (device_id, epoch, seq)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (device_id, ts, id);
CREATE TABLE IF NOT EXISTS state (
  device_id TEXT NOT NULL,
  key TEXT NOT NULL,
  reported_value TEXT,
  reported_version INTEGER,
  reported_ts INTEGER,
  desired_value TEXT,
  desired_version INTEGER,
  desired_ts INTEGER,
  PRIMARY KEY (device_id, key)
);
CREATE TABLE IF NOT EXISTS c2d_messages (
  device_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  PRIMARY KEY (device_id, seq)
);
CREATE INDEX IF NOT EXISTS c2d_messages_open ON c2d_messages (status, expires_at_ms);
CREATE TABLE IF NOT EXISTS rpc_requests (
  device_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  route TEXT NOT NULL,
  args TEXT,
  status TEXT NOT NULL,
  result TEXT,
  created_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (device_id, idempotency_key)
);
CREATE TABLE IF NOT EXISTS state_changes (
  id INTEGER PRIMARY KEY,
  device_id TEXT NOT NULL,
  side TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  version INTEGER NOT NULL,
  ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS downstream_cursors (
  route TEXT PRIMARY KEY,
  event_id INTEGER NOT NULL,
  state_change_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS downstream_dead_letters (
  id INTEGER PRIMARY KEY,
  route TEXT NOT NULL,
  stream TEXT NOT NULL,
  first_id INTEGER NOT NULL,
  last_id INTEGER NOT NULL,
  payload TEXT NOT NULL,
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS downstream_dead_letters_by_route ON downstream_dead_letters (route, id);
`;

interface DeviceRow {
  device_id: string;
  created_at_ms: number;
  last_seen_at_ms: number | null;
  desired_version: number;
  message_seq: number;
}

interface EventRow {
  id: number;
  device_id: string;
  epoch: number;
  seq: number;
  template_id: string;
  ts: number;
  fields: string;
  received_at_ms: number;
}

interface StateRow {
  key: string;
  reported_value: string | null;
  reported_version: number | null;
  reported_ts: number | null;
  desired_value: string | null;
  desired_version: number | null;
  desired_ts: number | null;
}

interface MessageRow {
  device_id: string;
  seq: number;
  body: string;
  created_at_ms: number;
  expires_at_ms: number;
  status: string;
}

interface RpcRow {
  device_id: string;
  idempotency_key: string;
  route: string;
  args: string | null;
  status: string;
  result: string | null;
  created_at_ms: number;
  expires_at_ms: number;
}

interface StateChangeRow {
  id: number;
  device_id: string;
  side: string;
  key: string;
  value: string | null;
  version: number;
  ts: number;
}

interface DeadLetterRow {
  id: number;
  route: string;
  stream: string;
  first_id: number;
  last_id: number;
  payload: string;
  error: string;
  attempts: number;
  created_at_ms: number;
}

function toEvent(row: EventRow): StoredEvent {
  return {
    id: row.id,
    deviceId: row.device_id,
    epoch: row.epoch,
    seq: row.seq,
    templateId: row.template_id,
    ts: row.ts,
    fields: JSON.parse(row.fields) as unknown,
    receivedAtMs: row.received_at_ms,
  };
}

function toDevice(row: DeviceRow): DeviceRecord {
  return {
    deviceId: row.device_id,
    createdAtMs: row.created_at_ms,
    lastSeenAtMs: row.last_seen_at_ms,
    desiredVersion: row.desired_version,
    messageSeq: row.message_seq,
  };
}

function toMessage(row: MessageRow): CloudMessage {
  return {
    deviceId: row.device_id,
    seq: row.seq,
    body: fromJsonText(row.body),
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
    status: row.status as MessageStatus,
  };
}

function toRpc(row: RpcRow): RpcRequest {
  return {
    deviceId: row.device_id,
    idempotencyKey: row.idempotency_key,
    route: row.route,
    args: fromJsonText(row.args),
    status: row.status as RpcStatus,
    result: fromJsonText(row.result),
    createdAtMs: row.created_at_ms,
    expiresAtMs: row.expires_at_ms,
  };
}

// WAL checkpoints copy the log into the database file and fsync it: done by the committing
// connection (SQLite's default) they stall the event loop for tens to hundreds of milliseconds every
// 4 MB of log, which is what set the ingest p99. A worker thread with its own connection runs
// PASSIVE checkpoints instead, which never block the writer.
const checkpointWorkerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 1000');
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage(String(error && error.message));
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;
const checkpointIntervalMs = 250;
/** If the worker falls behind (or dies), the writer checkpoints itself past this many WAL pages. */
const walAutocheckpointPagesFallback = 10_000;
/** Last-seen times are written together, at most this long after the first of a batch. */
const lastSeenFlushMs = 20;

export interface SqliteRepositoryOptions {
  /** The database file; created with its schema when absent. */
  path: string;
  /**
   * `full` (default): every write resolves only after the WAL is on disk, so an acknowledged event
   * survives power loss; `normal` survives a process crash only and is faster.
   */
  synchronous?: 'full' | 'normal';
  /** Run WAL checkpoints in a worker thread (default true; false: SQLite checkpoints at commit). */
  backgroundCheckpoints?: boolean;
}

export class SqliteRepository implements Repository {
  readonly kind = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly insertEvent: Database.Statement;
  private readonly runIngest: (batches: IngestBatch[], nowMs: number) => IngestResult[];
  private readonly logStateChange: Database.Statement;
  private readonly updateLastSeen: Database.Statement;
  private checkpointer: Worker | null = null;
  /** Last-seen times waiting for their batched write, and the callers waiting for it. */
  private lastSeenPending = new Map<string, number>();
  private lastSeenWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private lastSeenTimer: NodeJS.Timeout | null = null;
  /**
   * Durability without blocking the event loop: SQLite runs with synchronous=NORMAL (a commit
   * writes the WAL but does not fsync it), and each write's promise resolves after an fdatasync
   * of the WAL file on the libuv thread pool. One fdatasync covers every commit written before it
   * started, so concurrent writers share it (fsync coalescing), and the event loop keeps serving
   * sockets during the flush instead of sitting in the commit's fsync (about a fifth of the
   * ingest time in the cloud benchmark's profile). Checkpoints stay safe: with NORMAL, SQLite
   * syncs the WAL before each checkpoint and the database after it.
   */
  private readonly syncWal: boolean;
  private readonly walPath: string;
  private walHandle: FileHandle | null = null;
  /** Writes issued and writes covered by a finished fdatasync, counted. */
  private writesIssued = 0;
  private writesSynced = 0;
  private walSyncRunning: Promise<void> | null = null;

  constructor(options: SqliteRepositoryOptions) {
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.syncWal = options.synchronous !== 'normal';
    this.walPath = `${options.path}-wal`;
    // `tandem provision` may write while the cloud runs: wait for the lock instead of failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(sqliteSchema);
    this.insertEvent = this.db.prepare(
      'INSERT INTO events (device_id, epoch, seq, template_id, ts, fields, received_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.updateLastSeen = this.db.prepare('UPDATE devices SET last_seen_at_ms = ? WHERE device_id = ?');
    if (options.backgroundCheckpoints !== false) {
      this.db.pragma(`wal_autocheckpoint = ${walAutocheckpointPagesFallback}`);
      const worker = new Worker(checkpointWorkerSource, {
        eval: true,
        workerData: { driver: createRequire(import.meta.url).resolve('better-sqlite3'), path: options.path, intervalMs: checkpointIntervalMs },
      });
      // A failing checkpointer is not fatal: the writer's own fallback checkpoint takes over.
      worker.on('error', () => {});
      worker.unref();
      this.checkpointer = worker;
    }
    this.logStateChange = this.db.prepare('INSERT INTO state_changes (device_id, side, key, value, version, ts) VALUES (?, ?, ?, ?, ?, ?)');
    const insert = this.insertEvent;
    this.runIngest = this.db.transaction((batches: IngestBatch[], nowMs: number): IngestResult[] => {
      const results: IngestResult[] = [];
      for (const batch of batches) {
        const insertedSeqs: number[] = [];
        for (const row of batch.rows) {
          const info = insert.run(batch.deviceId, batch.epoch, row.seq, row.templateId, row.ts, JSON.stringify(row.fields) ?? 'null', nowMs);
          if (info.changes === 1) insertedSeqs.push(row.seq);
        }
        results.push({ inserted: insertedSeqs.length, duplicates: batch.rows.length - insertedSeqs.length, insertedSeqs });
      }
      return results;
    });
  }

  async createDevice(deviceId: string, secretHash: string, nowMs: number): Promise<boolean> {
    const info = this.db
      .prepare('INSERT INTO devices (device_id, secret_hash, created_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
      .run(deviceId, secretHash, nowMs);
    return this.durably(info.changes === 1);
  }

  async replaceDeviceSecret(deviceId: string, secretHash: string): Promise<boolean> {
    return this.durably(this.db.prepare('UPDATE devices SET secret_hash = ? WHERE device_id = ?').run(secretHash, deviceId).changes === 1);
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | null> {
    const row = this.db.prepare('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as DeviceRow | undefined;
    return row === undefined ? null : toDevice(row);
  }

  async getDeviceSecretHash(deviceId: string): Promise<string | null> {
    const row = this.db.prepare('SELECT secret_hash FROM devices WHERE device_id = ?').get(deviceId) as { secret_hash: string } | undefined;
    return row === undefined ? null : row.secret_hash;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.db.prepare('SELECT * FROM devices ORDER BY device_id').all() as DeviceRow[]).map(toDevice);
  }

  /** Resolves when every write committed so far is on disk (see `syncWal`). */
  private async durable(): Promise<void> {
    if (!this.syncWal) return;
    const target = ++this.writesIssued;
    while (this.writesSynced < target) {
      if (this.walSyncRunning !== null) {
        await this.walSyncRunning;
        continue;
      }
      const covered = this.writesIssued;
      this.walSyncRunning = (async () => {
        this.walHandle ??= await open(this.walPath, 'r');
        await this.walHandle.datasync();
        this.writesSynced = Math.max(this.writesSynced, covered);
      })().finally(() => {
        this.walSyncRunning = null;
      });
      await this.walSyncRunning;
    }
  }

  private async durably<T>(result: T): Promise<T> {
    await this.durable();
    return result;
  }

  /**
   * Batched: a reconnect storm of thousands of devices would otherwise pay one fsync'd transaction
   * each on the event loop. The promise still resolves only after the commit that holds it.
   */
  markDeviceSeen(deviceId: string, nowMs: number): Promise<void> {
    this.lastSeenPending.set(deviceId, nowMs);
    return new Promise((resolve, reject) => {
      this.lastSeenWaiters.push({ resolve, reject });
      this.lastSeenTimer ??= setTimeout(() => this.flushLastSeen(), lastSeenFlushMs);
    });
  }

  private flushLastSeen(): void {
    if (this.lastSeenTimer !== null) clearTimeout(this.lastSeenTimer);
    this.lastSeenTimer = null;
    const entries = [...this.lastSeenPending];
    const waiters = this.lastSeenWaiters;
    this.lastSeenPending = new Map();
    this.lastSeenWaiters = [];
    try {
      this.db.transaction(() => {
        for (const [deviceId, nowMs] of entries) this.updateLastSeen.run(nowMs, deviceId);
      })();
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error as Error);
      return;
    }
    this.durable().then(
      () => {
        for (const waiter of waiters) waiter.resolve();
      },
      (error: Error) => {
        for (const waiter of waiters) waiter.reject(error);
      },
    );
  }

  async ingestEvents(deviceId: string, epoch: number, rows: EventInput[], nowMs: number): Promise<IngestResult> {
    const results = this.runIngest([{ deviceId, epoch, rows }], nowMs);
    return this.durably(results[0]!);
  }

  async ingestBatches(batches: IngestBatch[], nowMs: number): Promise<IngestResult[]> {
    return this.durably(this.runIngest(batches, nowMs));
  }

  async listEvents(deviceId: string, query: EventQuery): Promise<StoredEvent[]> {
    const where = ['device_id = ?'];
    const params: (string | number)[] = [deviceId];
    if (query.fromTs !== undefined) {
      where.push('ts >= ?');
      params.push(query.fromTs);
    }
    if (query.toTs !== undefined) {
      where.push('ts < ?');
      params.push(query.toTs);
    }
    if (query.after !== undefined) {
      where.push('(ts > ? OR (ts = ? AND id > ?))');
      params.push(query.after.ts, query.after.ts, query.after.id);
    }
    params.push(query.limit);
    const rows = this.db.prepare(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY ts, id LIMIT ?`).all(...params) as EventRow[];
    return rows.map(toEvent);
  }

  async countEvents(deviceId: string): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM events WHERE device_id = ?').get(deviceId) as { n: number }).n;
  }

  async getState(deviceId: string): Promise<DeviceState | null> {
    const device = await this.getDevice(deviceId);
    if (device === null) return null;
    const rows = this.db.prepare('SELECT * FROM state WHERE device_id = ? ORDER BY key').all(deviceId) as StateRow[];
    return {
      deviceId,
      desiredVersion: device.desiredVersion,
      entries: rows.map((row) => ({
        key: row.key,
        reportedValue: fromJsonText(row.reported_value),
        reportedVersion: row.reported_version,
        reportedTs: row.reported_ts,
        desiredValue: fromJsonText(row.desired_value),
        desiredVersion: row.desired_version,
        desiredTs: row.desired_ts,
      })),
    };
  }

  async patchDesired(deviceId: string, expectedVersion: number, values: Record<string, unknown>, nowMs: number): Promise<PatchDesiredResult> {
    const bump = this.db.prepare(
      'UPDATE devices SET desired_version = desired_version + 1 WHERE device_id = ? AND desired_version = ? RETURNING desired_version',
    );
    const upsert = this.db.prepare(
      `INSERT INTO state (device_id, key, desired_value, desired_version, desired_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id, key) DO UPDATE SET desired_value = excluded.desired_value,
         desired_version = excluded.desired_version, desired_ts = excluded.desired_ts`,
    );
    const transaction = this.db.transaction((): PatchDesiredResult => {
      const bumped = bump.get(deviceId, expectedVersion) as { desired_version: number } | undefined;
      if (bumped === undefined) {
        const device = this.db.prepare('SELECT desired_version FROM devices WHERE device_id = ?').get(deviceId) as
          | { desired_version: number }
          | undefined;
        return device === undefined ? { outcome: 'unknown-device' } : { outcome: 'conflict', desiredVersion: device.desired_version };
      }
      for (const key of Object.keys(values)) {
        const text = JSON.stringify(values[key]) ?? 'null';
        upsert.run(deviceId, key, text, bumped.desired_version, nowMs);
        this.logStateChange.run(deviceId, 'desired', key, text, bumped.desired_version, nowMs);
      }
      return { outcome: 'applied', desiredVersion: bumped.desired_version };
    });
    return this.durably(transaction.immediate());
  }

  async applyReported(deviceId: string, updates: ReportedUpdate[]): Promise<string[]> {
    // The WHERE on the upsert is what keeps a stale (replayed or reordered) report from
    // overwriting a newer one.
    const upsert = this.db.prepare(
      `INSERT INTO state (device_id, key, reported_value, reported_version, reported_ts) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (device_id, key) DO UPDATE SET reported_value = excluded.reported_value,
         reported_version = excluded.reported_version, reported_ts = excluded.reported_ts
       WHERE state.reported_version IS NULL OR state.reported_version < excluded.reported_version`,
    );
    const transaction = this.db.transaction((): string[] => {
      const applied: string[] = [];
      for (const update of updates) {
        const text = JSON.stringify(update.value) ?? 'null';
        const info = upsert.run(deviceId, update.key, text, update.version, update.ts);
        if (info.changes === 1) {
          applied.push(update.key);
          this.logStateChange.run(deviceId, 'reported', update.key, text, update.version, update.ts);
        }
      }
      return applied;
    });
    return this.durably(transaction.immediate());
  }

  async enqueueMessage(deviceId: string, body: unknown, ttlSec: number, nowMs: number, queuedMax: number): Promise<EnqueueMessageResult> {
    const transaction = this.db.transaction((): EnqueueMessageResult => {
      const device = this.db.prepare('SELECT message_seq FROM devices WHERE device_id = ?').get(deviceId) as { message_seq: number } | undefined;
      if (device === undefined) return { outcome: 'unknown-device' };
      const open = this.db
        .prepare("SELECT count(*) AS n FROM c2d_messages WHERE device_id = ? AND status IN ('queued', 'delivered')")
        .get(deviceId) as { n: number };
      if (open.n >= queuedMax) return { outcome: 'queue-full' };
      const seq = device.message_seq + 1;
      this.db.prepare('UPDATE devices SET message_seq = ? WHERE device_id = ?').run(seq, deviceId);
      this.db
        .prepare("INSERT INTO c2d_messages (device_id, seq, body, created_at_ms, expires_at_ms, status) VALUES (?, ?, ?, ?, ?, 'queued')")
        .run(deviceId, seq, JSON.stringify(body) ?? 'null', nowMs, nowMs + ttlSec * 1000);
      return { outcome: 'queued', seq };
    });
    return this.durably(transaction.immediate());
  }

  async listMessages(deviceId: string): Promise<CloudMessage[]> {
    return (this.db.prepare('SELECT * FROM c2d_messages WHERE device_id = ? ORDER BY seq').all(deviceId) as MessageRow[]).map(toMessage);
  }

  async pendingMessages(deviceId: string, afterSeq: number, nowMs: number, limit: number): Promise<CloudMessage[]> {
    const rows = this.db
      .prepare(
        "SELECT * FROM c2d_messages WHERE device_id = ? AND seq > ? AND status IN ('queued', 'delivered') AND expires_at_ms > ? ORDER BY seq LIMIT ?",
      )
      .all(deviceId, afterSeq, nowMs, limit) as MessageRow[];
    return rows.map(toMessage);
  }

  async markMessagesDelivered(deviceId: string, seqs: number[]): Promise<void> {
    const update = this.db.prepare("UPDATE c2d_messages SET status = 'delivered' WHERE device_id = ? AND seq = ? AND status = 'queued'");
    this.db.transaction(() => {
      for (const seq of seqs) update.run(deviceId, seq);
    })();
    await this.durable();
  }

  async ackMessages(deviceId: string, uptoSeq: number): Promise<number> {
    return this.durably(this.db
      .prepare("UPDATE c2d_messages SET status = 'acked' WHERE device_id = ? AND seq <= ? AND status IN ('queued', 'delivered')")
      .run(deviceId, uptoSeq).changes);
  }

  async expireMessages(nowMs: number): Promise<CloudMessage[]> {
    const rows = this.db
      .prepare("UPDATE c2d_messages SET status = 'expired' WHERE status IN ('queued', 'delivered') AND expires_at_ms <= ? RETURNING *")
      .all(nowMs) as MessageRow[];
    return this.durably(rows.map(toMessage).sort((a, b) => (a.deviceId === b.deviceId ? a.seq - b.seq : a.deviceId < b.deviceId ? -1 : 1)));
  }

  async purgeMessages(beforeMs: number): Promise<number> {
    return this.durably(this.db.prepare("DELETE FROM c2d_messages WHERE status IN ('acked', 'expired') AND created_at_ms < ?").run(beforeMs).changes);
  }

  async createRpcRequest(request: Omit<RpcRequest, 'status' | 'result'>): Promise<{ created: boolean; request: RpcRequest }> {
    const info = this.db
      .prepare(
        `INSERT INTO rpc_requests (device_id, idempotency_key, route, args, status, result, created_at_ms, expires_at_ms)
         VALUES (?, ?, ?, ?, 'pending', NULL, ?, ?) ON CONFLICT DO NOTHING`,
      )
      .run(request.deviceId, request.idempotencyKey, request.route, toJsonText(request.args), request.createdAtMs, request.expiresAtMs);
    const stored = await this.getRpcRequest(request.deviceId, request.idempotencyKey);
    if (stored === null) throw new Error('rpc request vanished right after insert');
    return this.durably({ created: info.changes === 1, request: stored });
  }

  async getRpcRequest(deviceId: string, idempotencyKey: string): Promise<RpcRequest | null> {
    const row = this.db.prepare('SELECT * FROM rpc_requests WHERE device_id = ? AND idempotency_key = ?').get(deviceId, idempotencyKey) as
      | RpcRow
      | undefined;
    return row === undefined ? null : toRpc(row);
  }

  async completeRpcRequest(deviceId: string, idempotencyKey: string, status: RpcStatus, result: unknown): Promise<boolean> {
    return this.durably(
      this.db
        .prepare('UPDATE rpc_requests SET status = ?, result = ? WHERE device_id = ? AND idempotency_key = ?')
        .run(status, toJsonText(result), deviceId, idempotencyKey).changes === 1,
    );
  }

  async listRpcRequests(deviceId: string, limit: number): Promise<RpcRequest[]> {
    const rows = this.db.prepare('SELECT * FROM rpc_requests WHERE device_id = ? ORDER BY created_at_ms DESC, idempotency_key DESC LIMIT ?').all(deviceId, limit) as RpcRow[];
    return rows.map(toRpc);
  }

  async eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]> {
    return (this.db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as EventRow[]).map(toEvent);
  }

  async stateChangesAfter(afterId: number, limit: number): Promise<StateChange[]> {
    const rows = this.db.prepare('SELECT * FROM state_changes WHERE id > ? ORDER BY id LIMIT ?').all(afterId, limit) as StateChangeRow[];
    return rows.map((row) => ({
      id: row.id,
      deviceId: row.device_id,
      side: row.side as StateChange['side'],
      key: row.key,
      value: fromJsonText(row.value),
      version: row.version,
      ts: row.ts,
    }));
  }

  async downstreamHeads(): Promise<DownstreamCursor> {
    const row = this.db.prepare('SELECT (SELECT coalesce(max(id), 0) FROM events) AS e, (SELECT coalesce(max(id), 0) FROM state_changes) AS s').get() as { e: number; s: number };
    return { eventId: row.e, stateChangeId: row.s };
  }

  async openDownstreamCursor(route: string, initial: DownstreamCursor): Promise<DownstreamCursor> {
    this.db.prepare('INSERT INTO downstream_cursors (route, event_id, state_change_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING').run(route, initial.eventId, initial.stateChangeId);
    const row = this.db.prepare('SELECT event_id, state_change_id FROM downstream_cursors WHERE route = ?').get(route) as { event_id: number; state_change_id: number };
    return this.durably({ eventId: row.event_id, stateChangeId: row.state_change_id });
  }

  async advanceDownstreamCursor(route: string, stream: DownstreamStream, id: number, deadLetter?: Omit<DeadLetter, 'id'>): Promise<void> {
    const column = stream === 'events' ? 'event_id' : 'state_change_id';
    this.db.transaction(() => {
      if (deadLetter !== undefined) {
        this.db
          .prepare('INSERT INTO downstream_dead_letters (route, stream, first_id, last_id, payload, error, attempts, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
          .run(deadLetter.route, deadLetter.stream, deadLetter.firstId, deadLetter.lastId, JSON.stringify(deadLetter.payload) ?? 'null', deadLetter.error, deadLetter.attempts, deadLetter.createdAtMs);
      }
      this.db.prepare(`UPDATE downstream_cursors SET ${column} = max(${column}, ?) WHERE route = ?`).run(id, route);
    })();
    await this.durable();
  }

  async listDeadLetters(route: string, afterId: number, limit: number): Promise<DeadLetter[]> {
    const rows = this.db.prepare('SELECT * FROM downstream_dead_letters WHERE route = ? AND id > ? ORDER BY id LIMIT ?').all(route, afterId, limit) as DeadLetterRow[];
    return rows.map((row) => ({
      id: row.id,
      route: row.route,
      stream: row.stream as DownstreamStream,
      firstId: row.first_id,
      lastId: row.last_id,
      payload: fromJsonText(row.payload),
      error: row.error,
      attempts: row.attempts,
      createdAtMs: row.created_at_ms,
    }));
  }

  async purgeStateChanges(beforeTs: number): Promise<number> {
    const deleted = this.db
      .prepare('DELETE FROM state_changes WHERE ts < ? AND id <= coalesce((SELECT min(state_change_id) FROM downstream_cursors), 9007199254740991)')
      .run(beforeTs).changes;
    return this.durably(deleted);
  }

  async countDeadLetters(route: string): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM downstream_dead_letters WHERE route = ?').get(route) as { n: number }).n;
  }

  async queueDepths(): Promise<QueueDepths> {
    const messages = this.db.prepare("SELECT count(*) AS n FROM c2d_messages WHERE status IN ('queued', 'delivered')").get() as { n: number };
    const rpc = this.db.prepare("SELECT count(*) AS n FROM rpc_requests WHERE status IN ('pending', 'running')").get() as { n: number };
    return { messagesQueued: messages.n, rpcPending: rpc.n };
  }

  async close(): Promise<void> {
    if (this.lastSeenWaiters.length > 0 && this.db.open) this.flushLastSeen();
    if (this.checkpointer !== null) {
      const worker = this.checkpointer;
      this.checkpointer = null;
      // Unreferenced while it runs (a short-lived CLI must not wait for it); referenced while it stops.
      worker.ref();
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
    }
    while (this.walSyncRunning !== null) await this.walSyncRunning.catch(() => {});
    await this.walHandle?.close().catch(() => {});
    this.walHandle = null;
    if (this.db.open) this.db.close();
  }
}
