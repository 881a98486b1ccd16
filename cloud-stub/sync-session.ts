// The cloud side of the sync session (firmware/protocol/SPEC.md, "Sync session"): answers HELLO
// with what the device lacks, commits event frames before acknowledging them, keeps the state
// replica, delivers cloud-to-device messages in order and runs proxied RPC requests once per
// idempotency key. One instance serves every device; the transport hands it one device's messages
// at a time, in order.
import { crc32, crc32OfByteString } from '../firmware/protocol/crc32.ts';
import { syncMessagesPerSessionMax } from '../firmware/protocol/limits.ts';
import {
  stateOwnerCloud, stateOwnerDevice, stateTemplateHash, stateValueFromJson, stateValueToJson, type StateTemplate,
} from '../firmware/protocol/state-template.ts';
import {
  readShortString, readSyncVarint, readU32, rpcStatusError, rpcStatusExpired, syncError, syncErrorMalformed,
  syncErrorNoSession, syncErrorOverloaded, syncErrorUnknownStateTemplate, syncErrorUnknownTemplate, syncEvents,
  syncEventsAck, syncHello, syncMessage, syncMessageAck, syncProtocolVersion, syncRpcCall, syncRpcResult, syncStateAck,
  syncStateApplied, syncStateReport, syncStateSet, syncWelcome, writeSyncVarint, type SyncCursor,
} from '../firmware/protocol/sync-messages.ts';
import { findTemplateByHash, templateHashHex, type TemplateRegistry } from '../firmware/protocol/template.ts';
import { decodeFrame } from '../firmware/protocol/wire-objects.ts';
import { wireErrorUnknownTemplate } from '../firmware/protocol/wire-errors.ts';
import type { CloudContext } from './server.ts';
import type { UplinkHandler, UplinkMessage } from './transport.ts';
import type { EventInput } from './storage/repository.ts';

/** Runs a proxied RPC request; resolves with a status (rpcStatus*) and a JSON-able body. */
export type RpcRunner = (deviceId: string, route: string, args: unknown) => Promise<{ status: number; body: unknown }>;

export interface SyncSessionOptions {
  /** Event templates the cloud decodes with, by content hash. */
  templates: TemplateRegistry;
  /** State templates the cloud knows (the device announces one by hash). */
  stateTemplates: StateTemplate[];
  /** Runs RPC requests; without it every request is refused. */
  rpc?: RpcRunner;
}

/** What the cloud remembers of one device's open session (memory only; HELLO rebuilds it). */
interface DeviceSession {
  epoch: number;
  stateTemplate: StateTemplate | null;
  /** [SYNC-23] Highest seq of this epoch below which every event is committed (or was dropped on the device). */
  committedSeq: number;
  /** [SYNC-33] The same for earlier epochs whose events the device still sends from flash. */
  earlierCommitted: Map<number, number>;
  /** Versions of cloud-owned keys the device holds, by key id. */
  deviceVersions: Map<number, number>;
  /** Highest cloud-to-device message seq sent in this session. */
  messageSentSeq: number;
  messageAckedSeq: number;
}

export function stateTemplateHashOf(template: StateTemplate): number {
  return stateTemplateHash(template, crc32OfByteString);
}

function errorPayload(code: number, detail: string): Uint8Array {
  const text = Buffer.from(detail.slice(0, 200), 'latin1');
  const out = new Uint8Array(2 + text.length);
  out[0] = syncError;
  out[1] = code;
  out.set(text, 2);
  return out;
}

function varintMessage(type: number, values: number[]): Uint8Array {
  const out = new Uint8Array(1 + values.length * 8);
  out[0] = type;
  let at = 1;
  for (const value of values) at = writeSyncVarint(out, at, out.length, value);
  return out.subarray(0, at);
}

function jsonBody(type: number, head: number[], body: unknown, statusByte?: number): Uint8Array {
  const text = Buffer.from(JSON.stringify(body ?? null), 'utf8');
  const out = new Uint8Array(2 + head.length * 8 + text.length);
  out[0] = type;
  let at = 1;
  for (const value of head) at = writeSyncVarint(out, at, out.length, value);
  if (statusByte !== undefined) out[at++] = statusByte;
  out.set(text, at);
  return out.subarray(0, at + text.length);
}

/** Decodes message bodies the device sends as JSON text; malformed text is kept as a string. */
function parseJsonText(bytes: Uint8Array): unknown {
  const text = Buffer.from(bytes).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export class SyncSession implements UplinkHandler {
  private readonly sessions = new Map<string, DeviceSession>();
  private readonly stateTemplatesByHash = new Map<number, StateTemplate>();
  /** Conflicts already reported, by device and key: the desired version they were about. */
  private readonly conflictsReported = new Map<string, number>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly context: CloudContext,
    private readonly options: SyncSessionOptions,
  ) {
    for (const template of options.stateTemplates) this.stateTemplatesByHash.set(stateTemplateHashOf(template), template);
    // Desired changes and new messages reach a connected device at once, not at its next sync.
    this.unsubscribe = context.live.subscribe((update) => {
      if (update.type === 'desired') void this.guard(update.deviceId, () => this.sendDesired(update.deviceId));
      if (update.type === 'message-queued') void this.guard(update.deviceId, () => this.sendMessages(update.deviceId));
    });
    context.metrics.declare('tandem_sync_hellos_total', 'Sync sessions opened by HELLO.');
    context.metrics.declare('tandem_sync_errors_total', 'Errors reported to devices, by code.');
    context.metrics.declare('tandem_sync_acks_total', 'Event acknowledgements sent to devices.');
    context.metrics.declare('tandem_sync_conflicts_total', 'Changes to keys the other side owns, resolved for the owner.');
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /**
   * Sessions outlive connections: a broker may report an old connection's close after the new
   * one's HELLO (client takeover), so a close must not end the session; the next HELLO replaces it.
   * The map holds a few numbers per device ever seen by this process.
   */
  deviceConnection(_deviceId: string, _connected: boolean): void {}

  async handleUplink(message: UplinkMessage): Promise<void> {
    if (message.channel !== 'uplink') return;
    const bytes = new Uint8Array(message.payload.buffer, message.payload.byteOffset, message.payload.length);
    if (bytes.length === 0) return this.reportError(message.deviceId, syncErrorMalformed, 'empty message');
    const cursor: SyncCursor = { position: 1 };
    const type = bytes[0];
    if (type === syncHello) return this.handleHello(message.deviceId, bytes, cursor);
    const session = this.sessions.get(message.deviceId);
    if (session === undefined) return this.reportError(message.deviceId, syncErrorNoSession, `message type ${type} before HELLO`);
    if (type === syncEvents) return this.handleEvents(message.deviceId, session, bytes, cursor, message.receivedAtMs);
    if (type === syncStateReport) return this.handleStateReport(message.deviceId, session, bytes, cursor, message.receivedAtMs);
    if (type === syncStateApplied) return this.handleStateApplied(message.deviceId, session, bytes, cursor);
    if (type === syncMessageAck) return this.handleMessageAck(message.deviceId, session, bytes, cursor);
    if (type === syncRpcCall) return this.handleRpcCall(message.deviceId, session, bytes, cursor);
    return this.reportError(message.deviceId, syncErrorMalformed, `unknown message type ${type}`);
  }

  private async guard(deviceId: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      this.context.log(`sync: ${deviceId}: ${(error as Error).message}`);
    }
  }

  private send(deviceId: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    return this.context.transport.sendDownlink(deviceId, payload, qos);
  }

  private async reportError(deviceId: string, code: number, detail: string): Promise<void> {
    this.context.metrics.increment('tandem_sync_errors_total', 1, { code: String(code) });
    this.context.log(`sync: ${deviceId}: error ${code}: ${detail}`);
    await this.send(deviceId, errorPayload(code, detail));
  }

  /** [SYNC-1] [SYNC-10] [SYNC-21] Open the session, then send what the device lacks. */
  private async handleHello(deviceId: string, bytes: Uint8Array, cursor: SyncCursor): Promise<void> {
    const end = bytes.length;
    const version = bytes[1];
    cursor.position = 2;
    if (version !== syncProtocolVersion) return this.reportError(deviceId, syncErrorMalformed, `sync protocol version ${version} is not ${syncProtocolVersion}`);
    const epoch = readSyncVarint(bytes, cursor, end);
    const messageSeq = readSyncVarint(bytes, cursor, end);
    const stateHash = readU32(bytes, cursor, end);
    if (epoch < 0 || messageSeq < 0 || stateHash < 0 || cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated HELLO');
    const templateCount = bytes[cursor.position++];
    const unknown: string[] = [];
    for (let i = 0; i < templateCount; i++) {
      const hash = readU32(bytes, cursor, end);
      if (hash < 0) return this.reportError(deviceId, syncErrorMalformed, 'truncated HELLO');
      if (findTemplateByHash(this.options.templates, hash) === null) unknown.push(templateHashHex(hash));
    }
    if (cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated HELLO');
    const keyCount = bytes[cursor.position++];
    const deviceVersions = new Map<number, number>();
    for (let i = 0; i < keyCount; i++) {
      if (cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated HELLO');
      const keyId = bytes[cursor.position++];
      const keyVersion = readSyncVarint(bytes, cursor, end);
      if (keyVersion < 0) return this.reportError(deviceId, syncErrorMalformed, 'truncated HELLO');
      deviceVersions.set(keyId, keyVersion);
    }
    const previous = this.sessions.get(deviceId);
    const stateTemplate = this.stateTemplatesByHash.get(stateHash) ?? null;
    const session: DeviceSession = {
      epoch,
      stateTemplate,
      // The same epoch again (a reconnect): what we committed before still stands.
      committedSeq: previous !== undefined && previous.epoch === epoch ? previous.committedSeq : 0,
      earlierCommitted: previous !== undefined && previous.epoch === epoch ? previous.earlierCommitted : new Map(),
      deviceVersions,
      messageSentSeq: messageSeq,
      messageAckedSeq: messageSeq,
    };
    this.sessions.set(deviceId, session);
    this.context.metrics.increment('tandem_sync_hellos_total');
    this.context.log(`sync: ${deviceId} hello: epoch ${epoch}, ${templateCount} templates`);
    await this.context.repository.markDeviceSeen(deviceId, this.context.now());
    // [SYNC-1] [SYNC-4] HELLO names the last message applied: that acknowledges it (its own ack
    // may have been lost with the previous connection).
    if (messageSeq > 0) await this.context.repository.ackMessages(deviceId, messageSeq);
    await this.send(deviceId, varintMessage(syncWelcome, [epoch, session.committedSeq, Math.floor(this.context.now() / 1000)]));
    // [SYNC-27] The cloud never decodes with a guessed template: say which ones it lacks.
    if (unknown.length > 0) await this.reportError(deviceId, syncErrorUnknownTemplate, `unknown template hashes ${unknown.join(', ')}`);
    if (stateTemplate === null) await this.reportError(deviceId, syncErrorUnknownStateTemplate, `unknown state template hash ${templateHashHex(stateHash)}`);
    await this.sendDesired(deviceId);
    await this.sendMessages(deviceId);
  }

  /** [SYNC-2] [SYNC-22] [SYNC-23] Decode, commit, then acknowledge the contiguous prefix. */
  private async handleEvents(deviceId: string, session: DeviceSession, bytes: Uint8Array, cursor: SyncCursor, receivedAtMs: number): Promise<void> {
    const end = bytes.length;
    const epoch = readSyncVarint(bytes, cursor, end);
    const oldestSeq = readSyncVarint(bytes, cursor, end);
    if (epoch < 0 || oldestSeq < 0) return this.reportError(deviceId, syncErrorMalformed, 'truncated EVENTS header');
    // [SYNC-33] Events of an earlier boot (kept on the device's flash) come under their own epoch.
    if (epoch > session.epoch || epoch === 0) return this.reportError(deviceId, syncErrorMalformed, `EVENTS of epoch ${epoch} in a session of epoch ${session.epoch}`);
    // [SYNC-2] One or more frames, each behind its u16 length; every one must decode before any is
    // stored, so a message is committed whole or not at all.
    const rows: EventInput[] = [];
    let firstSeq = -1;
    let at = cursor.position;
    while (at < end) {
      if (at + 2 > end) return this.reportError(deviceId, syncErrorMalformed, 'truncated frame length');
      const length = bytes[at]! | (bytes[at + 1]! << 8);
      if (length === 0 || at + 2 + length > end) return this.reportError(deviceId, syncErrorMalformed, 'frame length beyond the message');
      const frame = decodeFrame(bytes.subarray(at + 2, at + 2 + length), this.options.templates, crc32);
      if (!frame.ok) {
        const code = frame.code === wireErrorUnknownTemplate ? syncErrorUnknownTemplate : syncErrorMalformed;
        return this.reportError(deviceId, code, frame.message);
      }
      const expected = firstSeq < 0 ? frame.firstSeq : firstSeq + rows.length;
      if (frame.firstSeq !== expected) return this.reportError(deviceId, syncErrorMalformed, `frames out of sequence: ${frame.firstSeq} after ${expected - 1}`);
      if (firstSeq < 0) firstSeq = frame.firstSeq;
      const template = frame.template;
      const templateName = template === null ? 'untemplated' : template.name;
      const timestampField = template === null ? null : (template.fields.find((field) => field.typeName === 'timestamp')?.name ?? null);
      frame.records.forEach((record, index) => {
        const fields = record as Record<string, unknown>;
        const ts = timestampField !== null && typeof fields[timestampField] === 'number' ? (fields[timestampField] as number) : receivedAtMs;
        rows.push({ seq: frame.firstSeq + index, templateId: templateName, ts, fields });
      });
      at += 2 + length;
    }
    if (rows.length === 0) return this.reportError(deviceId, syncErrorMalformed, 'EVENTS without frames');
    const outcome = await this.context.ingest.ingest(deviceId, epoch, rows);
    if (outcome.outcome === 'overloaded') return this.reportError(deviceId, syncErrorOverloaded, 'ingest queue full, retry later');
    if (outcome.duplicates > 0) this.context.log(`sync: ${deviceId}: ${outcome.duplicates} duplicate events ignored`);
    // Events before the oldest the device still holds were acknowledged or dropped (and reported).
    const current = epoch === session.epoch;
    let committed = current ? session.committedSeq : (session.earlierCommitted.get(epoch) ?? 0);
    if (oldestSeq - 1 > committed) committed = oldestSeq - 1;
    const lastSeq = firstSeq + rows.length - 1;
    if (firstSeq <= committed + 1 && lastSeq > committed) committed = lastSeq;
    if (current) {
      session.committedSeq = committed;
    } else {
      // One device sends one earlier epoch at a time, oldest first: the older ones are done. A
      // device that does otherwise costs at most a few entries (the first kept is the first to go).
      for (const known of session.earlierCommitted.keys()) if (known < epoch) session.earlierCommitted.delete(known);
      session.earlierCommitted.set(epoch, committed);
      if (session.earlierCommitted.size > 4) session.earlierCommitted.delete(session.earlierCommitted.keys().next().value!);
    }
    this.context.metrics.increment('tandem_sync_acks_total');
    // [SYNC-11] Acks are cumulative and idempotent: QoS 0 saves a packet id and a PUBACK on the
    // device's link; a lost one is covered by the next, or by the device's resend timeout.
    await this.send(deviceId, varintMessage(syncEventsAck, [epoch, committed]), 0);
  }

  /** [SYNC-3] [SYNC-13] Store device-owned values not older than what we hold, then acknowledge. */
  private async handleStateReport(deviceId: string, session: DeviceSession, bytes: Uint8Array, cursor: SyncCursor, receivedAtMs: number): Promise<void> {
    const end = bytes.length;
    const template = session.stateTemplate;
    if (template === null) return this.reportError(deviceId, syncErrorUnknownStateTemplate, 'state report without a known state template');
    if (cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated STATE');
    const count = bytes[cursor.position++];
    const updates: { key: string; value: unknown; version: number; ts: number }[] = [];
    const acks: number[] = [];
    for (let i = 0; i < count; i++) {
      if (cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated STATE');
      const keyId = bytes[cursor.position++];
      const version = readSyncVarint(bytes, cursor, end);
      if (version < 0 || cursor.position >= end) return this.reportError(deviceId, syncErrorMalformed, 'truncated STATE');
      const length = bytes[cursor.position++];
      if (cursor.position + length > end) return this.reportError(deviceId, syncErrorMalformed, 'truncated STATE value');
      const field = template.fields[keyId];
      const value = field === undefined ? undefined : stateValueToJson(field, bytes, cursor.position, length);
      cursor.position += length;
      if (field === undefined || field.owner !== stateOwnerDevice || field.name.startsWith('_') || value === undefined) {
        await this.reportError(deviceId, syncErrorMalformed, `bad state key ${keyId}`);
        continue;
      }
      updates.push({ key: field.name, value, version, ts: receivedAtMs });
      acks.push(keyId, version);
    }
    const applied = await this.context.repository.applyReported(deviceId, updates);
    if (applied.length > 0) this.context.live.publish({ type: 'reported', deviceId, keys: applied });
    const out = new Uint8Array(2 + acks.length * 8);
    out[0] = syncStateAck;
    out[1] = acks.length / 2;
    let at = 2;
    for (let i = 0; i < acks.length; i += 2) {
      out[at++] = acks[i]!;
      at = writeSyncVarint(out, at, out.length, acks[i + 1]!);
    }
    await this.send(deviceId, out.subarray(0, at), 0);
  }

  /**
   * [SYNC-5] The device holds these cloud-owned versions: remember them, and mirror each applied
   * desired value into the reported side of its key, so the replica shows what the device runs.
   */
  private async handleStateApplied(deviceId: string, session: DeviceSession, bytes: Uint8Array, cursor: SyncCursor): Promise<void> {
    const end = bytes.length;
    if (cursor.position >= end) return;
    const count = bytes[cursor.position++];
    const applied = new Map<number, number>();
    for (let i = 0; i < count && cursor.position < end; i++) {
      const keyId = bytes[cursor.position]!;
      cursor.position++;
      const version = readSyncVarint(bytes, cursor, end);
      if (version < 0) return this.reportError(deviceId, syncErrorMalformed, 'truncated STATE_APPLIED');
      session.deviceVersions.set(keyId, version);
      applied.set(keyId, version);
    }
    const template = session.stateTemplate;
    if (template === null || applied.size === 0) return;
    const state = await this.context.repository.getState(deviceId);
    const updates: { key: string; value: unknown; version: number; ts: number }[] = [];
    for (const [keyId, version] of applied) {
      const field = template.fields[keyId];
      const entry = field === undefined ? undefined : state?.entries.find((e) => e.key === field.name);
      if (entry !== undefined && entry.desiredVersion === version) updates.push({ key: entry.key, value: entry.desiredValue, version, ts: this.context.now() });
    }
    if (updates.length === 0) return;
    const stored = await this.context.repository.applyReported(deviceId, updates);
    if (stored.length > 0) this.context.live.publish({ type: 'reported', deviceId, keys: stored });
  }

  /** [SYNC-12] Cloud-owned values newer than the device's. */
  private async sendDesired(deviceId: string): Promise<void> {
    const session = this.sessions.get(deviceId);
    if (session === undefined || session.stateTemplate === null) return;
    const state = await this.context.repository.getState(deviceId);
    if (state === null) return;
    const template = session.stateTemplate;
    const parts: { keyId: number; version: number; value: Uint8Array }[] = [];
    for (const entry of state.entries) {
      if (entry.desiredVersion === null) continue;
      const keyId = template.fields.findIndex((field) => field.name === entry.key);
      const field = template.fields[keyId];
      if (field === undefined || field.owner !== stateOwnerCloud) {
        // [SYNC-32] One owner per key: a desired value for a key the device owns (or does not
        // have) is a conflict, resolved for the owner and reported once per desired version.
        this.reportConflict(deviceId, entry.key, entry.desiredVersion, field === undefined ? 'not a key of the device\'s state template' : 'the device owns this key; its reported value stands');
        continue;
      }
      if ((session.deviceVersions.get(keyId) ?? 0) >= entry.desiredVersion) continue;
      const value = stateValueFromJson(field, entry.desiredValue);
      if (typeof value === 'string') {
        this.context.log(`sync: ${deviceId}: desired ${value}; not sent`);
        continue;
      }
      parts.push({ keyId, version: entry.desiredVersion, value });
    }
    if (parts.length === 0) return;
    const out = new Uint8Array(2 + parts.reduce((sum, part) => sum + 10 + part.value.length, 0));
    out[0] = syncStateSet;
    out[1] = parts.length;
    let at = 2;
    for (const part of parts) {
      out[at++] = part.keyId;
      at = writeSyncVarint(out, at, out.length, part.version);
      out[at++] = part.value.length;
      out.set(part.value, at);
      at += part.value.length;
    }
    await this.send(deviceId, out.subarray(0, at));
  }

  private reportConflict(deviceId: string, key: string, version: number, detail: string): void {
    const seen = `${deviceId}\u0000${key}`;
    if (this.conflictsReported.get(seen) === version) return;
    this.conflictsReported.set(seen, version);
    this.context.metrics.increment('tandem_sync_conflicts_total');
    this.context.log(`sync: ${deviceId}: conflict on '${key}' (desired version ${version}): ${detail}`);
    this.context.live.publish({ type: 'conflict', deviceId, key, owner: 'device', detail });
  }

  /** [SYNC-14] Queued messages after the last one sent, in order, a bounded number at a time. */
  private async sendMessages(deviceId: string): Promise<void> {
    const session = this.sessions.get(deviceId);
    if (session === undefined) return;
    const window = syncMessagesPerSessionMax - (session.messageSentSeq - session.messageAckedSeq);
    if (window <= 0) return;
    const messages = await this.context.repository.pendingMessages(deviceId, session.messageSentSeq, this.context.now(), window);
    // [SYNC-14] Each message names the seq it follows in this delivery (expired ones are skipped
    // on purpose), so the device can tell a deliberate skip from a message still on its way.
    for (const message of messages) {
      await this.send(deviceId, jsonBody(syncMessage, [message.seq, session.messageSentSeq], message.body));
      session.messageSentSeq = Math.max(session.messageSentSeq, message.seq);
    }
    if (messages.length > 0) await this.context.repository.markMessagesDelivered(deviceId, messages.map((m) => m.seq));
  }

  /** [SYNC-4] Acknowledged messages are purged; the next ones follow. */
  private async handleMessageAck(deviceId: string, session: DeviceSession, bytes: Uint8Array, cursor: SyncCursor): Promise<void> {
    const seq = readSyncVarint(bytes, cursor, bytes.length);
    if (seq < 0) return this.reportError(deviceId, syncErrorMalformed, 'truncated MESSAGE_ACK');
    const gap = cursor.position < bytes.length && (bytes[cursor.position]! & 1) === 1;
    if (seq > session.messageAckedSeq) session.messageAckedSeq = seq;
    // [SYNC-26] The device refused a message after a gap: send again from the last it applied.
    if (gap || seq > session.messageSentSeq) session.messageSentSeq = seq;
    await this.context.repository.ackMessages(deviceId, seq);
    await this.sendMessages(deviceId);
  }

  /** [SYNC-6] [SYNC-28] One run per idempotency key (device, epoch, call id); results are kept. */
  private async handleRpcCall(deviceId: string, session: DeviceSession, bytes: Uint8Array, cursor: SyncCursor): Promise<void> {
    const end = bytes.length;
    const epoch = readSyncVarint(bytes, cursor, end);
    const callId = readSyncVarint(bytes, cursor, end);
    const ttlSec = readSyncVarint(bytes, cursor, end);
    const route = readShortString(bytes, cursor, end);
    if (epoch < 0 || callId < 0 || ttlSec < 0 || route === null) return this.reportError(deviceId, syncErrorMalformed, 'truncated RPC_CALL');
    const args = parseJsonText(bytes.subarray(cursor.position));
    const idempotencyKey = `${epoch}:${callId}`;
    const now = this.context.now();
    const { created, request } = await this.context.repository.createRpcRequest({
      deviceId, idempotencyKey, route, args, createdAtMs: now, expiresAtMs: now + ttlSec * 1000,
    });
    if (!created) {
      // A retransmitted request: answer with the stored result, never run it again.
      if (request.status === 'done' || request.status === 'error' || request.status === 'expired') {
        const stored = request.result as { status: number; body: unknown } | null;
        await this.send(deviceId, jsonBody(syncRpcResult, [epoch, callId], stored?.body ?? null, stored?.status ?? rpcStatusExpired));
      }
      return;
    }
    void session;
    const runner = this.options.rpc;
    const result = runner === undefined ? { status: rpcStatusError, body: { error: 'no RPC routes are configured' } } : await runner(deviceId, route, args);
    const finalStatus = this.context.now() > request.expiresAtMs ? rpcStatusExpired : result.status;
    await this.context.repository.completeRpcRequest(deviceId, idempotencyKey, finalStatus === 0 ? 'done' : 'error', { status: finalStatus, body: result.body });
    if (this.context.transport.isConnected(deviceId)) {
      await this.send(deviceId, jsonBody(syncRpcResult, [epoch, callId], result.body, finalStatus));
    }
  }
}

/** The SessionFactory for startCloud. */
export function syncSessionFactory(options: SyncSessionOptions) {
  return (context: CloudContext): SyncSession => new SyncSession(context, options);
}


