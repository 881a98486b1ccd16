// The cloud's storage contract: every durable thing the cloud keeps, behind one interface with two
// implementations (SQLite embedded, PostgreSQL for several processes), both run through one
// contract test suite (test/cloud/repository-contract.ts).

/** A device in the registry. The secret is never stored, only its scrypt hash. */
export interface DeviceRecord {
  deviceId: string;
  createdAtMs: number;
  /** Last time the device connected or sent anything; null before its first connection. */
  lastSeenAtMs: number | null;
  /** Version of the newest desired (cloud-owned) change; per-key desired versions come from it. */
  desiredVersion: number;
  /** Sequence of the newest cloud-to-device message ever queued for this device. */
  messageSeq: number;
}

/** One decoded event as the ingest path hands it over; (device, epoch, seq) identifies it. */
export interface EventInput {
  seq: number;
  /** The template the device encoded it with (an id or content hash from the codec). */
  templateId: string;
  /** Device time of the event, milliseconds since 1970. */
  ts: number;
  /** Decoded fields, stored as JSON. */
  fields: unknown;
}

export interface StoredEvent extends EventInput {
  /** Insertion order; also the tie-breaker of the events pagination cursor. */
  id: number;
  deviceId: string;
  epoch: number;
  receivedAtMs: number;
}

export interface IngestBatch {
  deviceId: string;
  epoch: number;
  rows: EventInput[];
}

export interface IngestResult {
  inserted: number;
  duplicates: number;
  /** Sequences that were new (committed now), in input order: only these go downstream. */
  insertedSeqs: number[];
}

export interface EventQuery {
  /** Inclusive lower and exclusive upper bound on `ts`. */
  fromTs?: number;
  toTs?: number;
  limit: number;
  /** Continue after this (ts, id) position, taken from the last row of the previous page. */
  after?: { ts: number; id: number };
}

/** One state key of one device: the reported (device-owned) and desired (cloud-owned) halves. */
export interface StateEntry {
  key: string;
  reportedValue: unknown;
  reportedVersion: number | null;
  reportedTs: number | null;
  desiredValue: unknown;
  desiredVersion: number | null;
  desiredTs: number | null;
}

export interface DeviceState {
  deviceId: string;
  desiredVersion: number;
  entries: StateEntry[];
}

export interface ReportedUpdate {
  key: string;
  value: unknown;
  /** The device's version for this key; an update not newer than the stored one is stale. */
  version: number;
  ts: number;
}

export type PatchDesiredResult =
  | { outcome: 'applied'; desiredVersion: number }
  | { outcome: 'conflict'; desiredVersion: number }
  | { outcome: 'unknown-device' };

export type MessageStatus = 'queued' | 'delivered' | 'acked' | 'expired';

export interface CloudMessage {
  deviceId: string;
  seq: number;
  body: unknown;
  createdAtMs: number;
  expiresAtMs: number;
  status: MessageStatus;
}

export type EnqueueMessageResult =
  | { outcome: 'queued'; seq: number }
  | { outcome: 'queue-full' }
  | { outcome: 'unknown-device' };

export type RpcStatus = 'pending' | 'running' | 'done' | 'error' | 'expired';

export interface RpcRequest {
  deviceId: string;
  idempotencyKey: string;
  route: string;
  args: unknown;
  status: RpcStatus;
  result: unknown;
  createdAtMs: number;
  expiresAtMs: number;
}

/** One committed change of a state key, in commit order: what downstream routes follow. */
export interface StateChange {
  /** Position in the state-change log (increasing in commit order). */
  id: number;
  deviceId: string;
  side: 'reported' | 'desired';
  key: string;
  value: unknown;
  version: number;
  ts: number;
}

/** Where a downstream route stands: the last event and state change it delivered. */
export interface DownstreamCursor {
  eventId: number;
  stateChangeId: number;
}

export type DownstreamStream = 'events' | 'state';

/** A batch a downstream route gave up on after its maximum attempts, kept for inspection. */
export interface DeadLetter {
  id: number;
  route: string;
  stream: DownstreamStream;
  /** Ids (event or state-change log) the batch covered. */
  firstId: number;
  lastId: number;
  payload: unknown;
  error: string;
  attempts: number;
  createdAtMs: number;
}

export interface QueueDepths {
  messagesQueued: number;
  rpcPending: number;
}

/**
 * Every method commits before its promise resolves: a caller that acknowledges to a device after
 * `await` acknowledges durable data only.
 */
export interface Repository {
  /** Which implementation this is, for logs and metrics. */
  readonly kind: 'sqlite' | 'postgres';

  // Devices
  /** Returns false when the device already exists (its secret is left unchanged). */
  createDevice(deviceId: string, secretHash: string, nowMs: number): Promise<boolean>;
  /** Replaces the secret of an existing device; false when there is no such device. */
  replaceDeviceSecret(deviceId: string, secretHash: string): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRecord | null>;
  /** The stored scrypt hash, or null for an unknown device. */
  getDeviceSecretHash(deviceId: string): Promise<string | null>;
  listDevices(): Promise<DeviceRecord[]>;
  markDeviceSeen(deviceId: string, nowMs: number): Promise<void>;

  // Events
  /** Inserts one device's rows in one transaction; rows already stored count as duplicates. */
  ingestEvents(deviceId: string, epoch: number, rows: EventInput[], nowMs: number): Promise<IngestResult>;
  /** Group commit: several devices' batches in ONE transaction, one result per batch in order. */
  ingestBatches(batches: IngestBatch[], nowMs: number): Promise<IngestResult[]>;
  listEvents(deviceId: string, query: EventQuery): Promise<StoredEvent[]>;
  countEvents(deviceId: string): Promise<number>;

  // State replica
  getState(deviceId: string): Promise<DeviceState | null>;
  /**
   * Sets desired values if the device's desired version still equals `expectedVersion`; every
   * changed key gets the new device-wide version, so "desired newer than V" is one comparison.
   */
  patchDesired(deviceId: string, expectedVersion: number, values: Record<string, unknown>, nowMs: number): Promise<PatchDesiredResult>;
  /** Applies reported values whose version is newer than the stored one; returns the applied keys. */
  applyReported(deviceId: string, updates: ReportedUpdate[]): Promise<string[]>;

  // Cloud-to-device queue
  enqueueMessage(deviceId: string, body: unknown, ttlSec: number, nowMs: number, queuedMax: number): Promise<EnqueueMessageResult>;
  listMessages(deviceId: string): Promise<CloudMessage[]>;
  /** Queued or delivered, unexpired messages after `afterSeq`, oldest first: what to send next. */
  pendingMessages(deviceId: string, afterSeq: number, nowMs: number, limit: number): Promise<CloudMessage[]>;
  markMessagesDelivered(deviceId: string, seqs: number[]): Promise<void>;
  /** The device acknowledged everything up to `uptoSeq`: those are purged from the queue state. */
  ackMessages(deviceId: string, uptoSeq: number): Promise<number>;
  /** Marks unacknowledged messages past their time to live as expired and returns them. */
  expireMessages(nowMs: number): Promise<CloudMessage[]>;
  /** Deletes acknowledged and expired messages created before `beforeMs`; returns how many. */
  purgeMessages(beforeMs: number): Promise<number>;

  // RPC requests
  /** Records a request; a repeated idempotency key returns the existing one with created=false. */
  createRpcRequest(request: Omit<RpcRequest, 'status' | 'result'>): Promise<{ created: boolean; request: RpcRequest }>;
  getRpcRequest(deviceId: string, idempotencyKey: string): Promise<RpcRequest | null>;
  completeRpcRequest(deviceId: string, idempotencyKey: string, status: RpcStatus, result: unknown): Promise<boolean>;

  /** The device's RPC requests, newest first (the RPC log). */
  listRpcRequests(deviceId: string, limit: number): Promise<RpcRequest[]>;

  // Downstream routes (cloud-stub/downstream): a durable cursor per route over the event table and
  // the state-change log, which are read in id order.
  /** Committed events with id > afterId, in id order. */
  eventsAfter(afterId: number, limit: number): Promise<StoredEvent[]>;
  /** State changes (reported and desired) with id > afterId, in id order. */
  stateChangesAfter(afterId: number, limit: number): Promise<StateChange[]>;
  /** The newest event id and state-change id (0 when empty): the heads the lag is measured to. */
  downstreamHeads(): Promise<DownstreamCursor>;
  /** A route's cursor; a route seen for the first time starts at `initial`. */
  openDownstreamCursor(route: string, initial: DownstreamCursor): Promise<DownstreamCursor>;
  /** Moves a cursor forward (never back); with a dead letter, both in one transaction. */
  advanceDownstreamCursor(route: string, stream: DownstreamStream, id: number, deadLetter?: Omit<DeadLetter, 'id'>): Promise<void>;
  /** Dead letters of a route with id > afterId, oldest first. */
  listDeadLetters(route: string, afterId: number, limit: number): Promise<DeadLetter[]>;
  /**
   * Deletes state changes older than `beforeTs` that every route's cursor has passed (all of them
   * when no route exists); returns how many. Keeps the log bounded without losing anything a route
   * still has to deliver.
   */
  purgeStateChanges(beforeTs: number): Promise<number>;
  countDeadLetters(route: string): Promise<number>;

  queueDepths(): Promise<QueueDepths>;
  close(): Promise<void>;
}

/** JSON text for storage; undefined (absent) is stored as SQL NULL. */
export function toJsonText(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function fromJsonText(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}
