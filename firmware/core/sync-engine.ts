// The device side of the sync session [SYNC-1..SYNC-31]: on every connection it says hello, then
// sends changed device-owned state, drains the event cache oldest first in frames, and sends
// pending RPC requests; it applies what the cloud sends back (acks, cloud-owned state, messages,
// RPC results). Nothing is purged before the cloud says it is durably committed. All buffers are
// allocated in the constructor; emitting an event allocates nothing.
import type { Clock } from '../hal/clock.ts';
import type { Log } from '../hal/log.ts';
import type { Crc32 } from '../protocol/crc32.ts';
import { createFrameEncoder, frameEncodeAppendRecord, frameEncodeBegin, frameEncodeFinish, type FrameEncoder } from '../protocol/frame.ts';
import {
  mqttPacketBytesMax, rpcArgsBytesMax, rpcPendingMax, syncAckTimeoutMs, syncFlashFillPercentTrigger, syncPeriodicIdleMs, wireFrameBytesMax,
} from '../protocol/limits.ts';
import { encodeRecord } from '../protocol/record.ts';
import type { Template, WireValue } from '../protocol/template.ts';
import { wireErrorUnknownTemplate } from '../protocol/wire-errors.ts';
import {
  bytesToByteString, readSyncVarint, rpcStatusExpired, syncError, syncErrorNoSession, syncEvents, syncEventsAck,
  syncHello, syncMessage, syncMessageAck, syncProtocolVersion, syncRpcCall, syncRpcResult, syncStateAck, syncStateApplied,
  syncStateReport, syncStateSet, syncWelcome, writeShortString, writeSyncVarint, writeU32, type SyncCursor,
} from '../protocol/sync-messages.ts';
import { downlinkTopic, uplinkTopic } from '../protocol/topics.ts';
import { stateOwnerCloud, stateOwnerDevice, type StateTemplate } from '../protocol/state-template.ts';
import { eventBatchHeaderBytes, eventEntryHeaderBytes, type EventBacklog, type EventBatch, type EventCache } from './event-cache.ts';
import type { StateStore } from './state-store.ts';

/** The part of the MQTT client the engine uses (MqttClient implements it). */
export interface SyncLink {
  publish(topic: string, payload: string | Uint8Array, qos: number, retain: boolean): number;
  subscribe(topicFilter: string, qos: number): number;
  start(nowMs: number): void;
  stop(): void;
  /** QoS 1 publishes not yet acknowledged by the broker. */
  inFlight(): number;
}

/** What the application hears from the engine. One object for the engine's life. */
export interface SyncEvents {
  /** A cloud-owned key got a new value (already stored). */
  onStateChanged(keyId: number): void;
  /** A cloud-to-device message (JSON text as a byte string), delivered once. */
  onMessage(seq: number, body: string): void;
  /** A session completed (everything sent was acknowledged) or failed. */
  onSyncOutcome(ok: boolean): void;
  /** The cloud reported an error ([SYNC-16]). */
  onCloudError(code: number, detail: string): void;
}

/** Called once with the RPC's status ([SYNC-15] rpcStatus*) and result body (JSON text). */
export type RpcCallback = (status: number, body: string) => void;

export const syncModeContinuous = 0;
export const syncModePeriodic = 1;

export interface SyncOptions {
  deviceId: string;
  /** Boot epoch: grows by one every boot, so (device, epoch, seq) names an event for good. */
  epoch: number;
  /** Hash of the state template (the cloud decodes state values with it). */
  stateTemplateHash: number;
  /** syncModeContinuous (stay connected) or syncModePeriodic. */
  mode: number;
  /** Periodic mode: connect this often. */
  periodMs: number;
  /** Periodic mode: connect early once the RAM ring holds this many bytes (or the flash tier is syncFlashFillPercentTrigger full). */
  fillBytesTrigger: number;
  /** Key that persists the last cloud-to-device message applied (a local `_` key), or -1. */
  messageSeqKeyId: number;
}

/** Events are stored in the cache as: template id (1 byte), then the codec's record. */
const eventTemplateIdBytes = 1;
/** Room before the frames in an EVENTS message: type, epoch and oldest seq varints. */
const eventsHeaderBytesMax = 12;
/** Room worth starting another frame in: its length, a header and a few records. */
const eventsFrameRoomMin = 2 + 24;

/** Sync outcome figures, readable by the application (and replicated as device status). */
export interface SyncStatus {
  connected: boolean;
  sessionOpen: boolean;
  lastSyncMs: number;
  lastSyncOk: boolean;
  duplicates: number;
  conflicts: number;
  /** Highest seq of this boot epoch the cloud acknowledged as committed. */
  ackedSeq: number;
  /** EVENTS messages published, and the frames they carried. */
  eventMessagesSent: number;
  framesSent: number;
  /** Bytes of event frames sent (the codec's output), and of every uplink payload. */
  frameBytesSent: number;
  bytesSent: number;
}

export class SyncEngine {
  declare readonly status: SyncStatus;
  declare private readonly link: SyncLink;
  declare private readonly cache: EventCache;
  declare private readonly state: StateStore;
  declare private readonly stateTemplate: StateTemplate;
  declare private readonly templates: Template[];
  declare private readonly clock: Clock;
  declare private readonly log: Log;
  declare private readonly events: SyncEvents;
  declare private readonly options: SyncOptions;
  declare private readonly up: string;
  declare private readonly down: string;
  declare private readonly out: Uint8Array;
  declare private readonly batch: Uint8Array;
  declare private readonly record: Uint8Array;
  declare private readonly encoder: FrameEncoder;
  declare private readonly cursor: SyncCursor;
  /** Device-owned key versions sent this session (so each change goes out once per session). */
  declare private readonly stateSent: Uint32Array;
  declare private readonly rpcIds: Float64Array;
  declare private readonly rpcExpiresMs: Float64Array;
  declare private readonly rpcSent: Uint8Array;
  declare private readonly rpcRoutes: string[];
  declare private readonly rpcArgs: string[];
  declare private readonly rpcCallbacks: (RpcCallback | null)[];
  declare private nextRpcId: number;
  /** Highest event seq sent in this session (events above it are still to send). */
  declare private sentSeq: number;
  /** [SYNC-33] Earlier boots' events on flash (null: no flash tier). */
  declare private backlog: EventBacklog | null;
  /** The backlog epoch being sent, the highest seq of it sent, and what its last read produced. */
  declare private backlogSentEpoch: number;
  declare private backlogSentSeq: number;
  declare private readonly backlogBatch: EventBatch;
  declare private lastAckMs: number;
  declare private lastMessageSeq: number;
  declare private running: boolean;
  declare private nextPeriodicMs: number;
  declare private idleSinceMs: number;
  /** When the cache last went from empty to holding events. */
  declare private cacheSinceMs: number;
  /** HELLO could not be queued (MQTT window full): send it as soon as there is room. */
  declare private helloPending: boolean;
  /** When the last STATE went out unacknowledged (-1: nothing waits for a STATE_ACK). */
  declare private stateSentMs: number;
  /** A MESSAGE_ACK could not be queued: send it as soon as there is room. */
  declare private messageAckPending: boolean;
  /** A message after a gap was refused since the last ack went out. */
  declare private messageGap: boolean;

  constructor(link: SyncLink, cache: EventCache, state: StateStore, stateTemplate: StateTemplate, templates: Template[],
    clock: Clock, log: Log, crc: Crc32, events: SyncEvents, options: SyncOptions) {
    this.link = link;
    this.cache = cache;
    this.state = state;
    this.stateTemplate = stateTemplate;
    this.templates = templates;
    this.clock = clock;
    this.log = log;
    this.events = events;
    this.options = options;
    this.up = uplinkTopic(options.deviceId);
    this.down = downlinkTopic(options.deviceId);
    this.out = new Uint8Array(mqttPacketBytesMax);
    this.batch = new Uint8Array(wireFrameBytesMax);
    this.record = new Uint8Array(eventTemplateIdBytes + 255);
    this.encoder = createFrameEncoder(crc);
    this.cursor = { position: 0 };
    this.stateSent = new Uint32Array(stateTemplate.fields.length);
    this.rpcIds = new Float64Array(rpcPendingMax);
    this.rpcExpiresMs = new Float64Array(rpcPendingMax);
    this.rpcSent = new Uint8Array(rpcPendingMax);
    this.rpcRoutes = [];
    this.rpcArgs = [];
    this.rpcCallbacks = [];
    for (let i = 0; i < rpcPendingMax; i++) {
      this.rpcRoutes.push('');
      this.rpcArgs.push('');
      this.rpcCallbacks.push(null);
    }
    this.nextRpcId = 1;
    this.sentSeq = 0;
    this.backlog = null;
    this.backlogSentEpoch = 0;
    this.backlogSentSeq = 0;
    this.backlogBatch = { firstSeq: 0, count: 0, bytes: 0 };
    this.lastAckMs = 0;
    this.running = false;
    this.nextPeriodicMs = 0;
    this.idleSinceMs = -1;
    this.cacheSinceMs = 0;
    this.helloPending = false;
    this.messageAckPending = false;
    this.messageGap = false;
    this.stateSentMs = -1;
    this.lastMessageSeq = options.messageSeqKeyId >= 0 && state.has(options.messageSeqKeyId) ? (state.getNumber(options.messageSeqKeyId) as number) : 0;
    this.status = { connected: false, sessionOpen: false, lastSyncMs: 0, lastSyncOk: false, duplicates: 0, conflicts: 0, ackedSeq: 0, eventMessagesSent: 0, framesSent: 0, frameBytesSent: 0, bytesSent: 0 };
  }

  /** [SYNC-33] Sends the events of earlier boots kept on flash before this boot's. */
  attachBacklog(backlog: EventBacklog): void {
    this.backlog = backlog;
  }

  /** Starts syncing: connects now (continuous) or at the first period (periodic). */
  start(nowMs: number): void {
    this.running = true;
    this.link.start(nowMs);
  }

  /** Connects now (periodic mode); in continuous mode a connected engine is already syncing. */
  syncNow(): void {
    if (!this.status.connected) this.link.start(this.clock.nowMs());
  }

  /**
   * [SYNC-30] Caches one event of `template` (values[i] = field i, a preallocated array the caller
   * reuses). Returns its seq, or a negative code (a codec error for a bad value, or the cache's
   * refusal, which the cache counts as a drop). A template the device was not started with
   * (options.templates) is refused with wireErrorUnknownTemplate: it could never be sent, and
   * once cached it would hold up every event after it.
   */
  emit(template: Template, values: ArrayLike<WireValue>): number {
    const end = this.encodeEvent(template, values);
    if (end < 0) return end;
    if (this.cache.totalCount() === 0) this.cacheSinceMs = this.clock.nowMs();
    return this.cache.append(this.record, 0, end);
  }

  /**
   * [SYNC-29] Caches an event only if the ring has room for it as it is: it never pushes out an
   * older event nor counts as a drop when refused. For reports about the cache itself (a drop
   * report that evicted an event would need reporting in turn). Returns the seq, or -1 (no room)
   * or a codec error.
   */
  emitIfRoom(template: Template, values: ArrayLike<WireValue>): number {
    const end = this.encodeEvent(template, values);
    if (end < 0) return end;
    const cache = this.cache;
    if (cache.capacity - 1 - cache.bytesUsed < end + eventEntryHeaderBytes) return -1;
    if (cache.totalCount() === 0) this.cacheSinceMs = this.clock.nowMs();
    return cache.append(this.record, 0, end);
  }

  /** Encodes an event as the cache stores it (template id, then the record) into `record`. */
  private encodeEvent(template: Template, values: ArrayLike<WireValue>): number {
    const known = this.templateById(template.id);
    if (known === null || known.hash !== template.hash) return wireErrorUnknownTemplate;
    const record = this.record;
    record[0] = template.id;
    return encodeRecord(template, values, record, eventTemplateIdBytes, record.length);
  }

  /**
   * [SYNC-31] Asks the cloud to run RPC `route` with `args` (JSON text). The request waits for a
   * connection within ttlSec; `callback` gets the result, or rpcStatusExpired. Returns the call id,
   * or -1 when rpcPendingMax calls are already waiting or the arguments are too long.
   */
  call(route: string, args: string, ttlSec: number, callback: RpcCallback): number {
    if (args.length > rpcArgsBytesMax || route.length > 64) return -1;
    for (let i = 0; i < rpcPendingMax; i++) {
      if (this.rpcCallbacks[i] !== null) continue;
      const id = this.nextRpcId++;
      this.rpcIds[i] = id;
      this.rpcExpiresMs[i] = this.clock.nowMs() + ttlSec * 1000;
      this.rpcSent[i] = 0;
      this.rpcRoutes[i] = route;
      this.rpcArgs[i] = args;
      this.rpcCallbacks[i] = callback;
      this.pump();
      return id;
    }
    return -1;
  }

  // MqttClientEvents: the client calls these.

  onConnect(sessionPresent: boolean): void {
    this.status.connected = true;
    this.status.sessionOpen = false;
    if (!sessionPresent) this.link.subscribe(this.down, 1);
    this.sendHello();
  }

  onDisconnect(code: number): void {
    const wasOpen = this.status.sessionOpen;
    this.status.connected = false;
    this.status.sessionOpen = false;
    // [SYNC-24] Unacknowledged events go out again in the next session; the cloud dedupes them.
    this.sentSeq = 0;
    this.backlogSentSeq = 0;
    for (let i = 0; i < rpcPendingMax; i++) this.rpcSent[i] = 0;
    if (wasOpen && this.hasUnacked()) this.finishSync(false);
    this.log.info('sync: disconnected (' + code + ')');
  }

  onPublishAcked(packetId: number): void {
    this.pump();
  }

  onSubscribeAcked(packetId: number, grantedQos: number): void {
    if (grantedQos === 128) this.log.error('sync: the broker refused the downlink subscription');
  }

  onMessage(topic: string, bytes: Uint8Array, offset: number, length: number): void {
    if (topic !== this.down || length < 1) return;
    const end = offset + length;
    const cursor = this.cursor;
    cursor.position = offset + 1;
    const type = bytes[offset];
    if (type === syncWelcome) this.handleWelcome(bytes, cursor, end);
    else if (type === syncEventsAck) this.handleEventsAck(bytes, cursor, end);
    else if (type === syncStateSet) this.handleStateSet(bytes, cursor, end);
    else if (type === syncStateAck) this.handleStateAck(bytes, cursor, end);
    else if (type === syncMessage) this.handleMessage(bytes, cursor, end);
    else if (type === syncRpcResult) this.handleRpcResult(bytes, cursor, end);
    else if (type === syncError) this.handleError(bytes, cursor, end);
    else this.log.warn('sync: unknown downlink type ' + type);
    this.pump();
  }

  /** Does what is due: expiring RPCs, ack timeouts, periodic connects and disconnects. */
  tick(nowMs: number): void {
    for (let i = 0; i < rpcPendingMax; i++) {
      const callback = this.rpcCallbacks[i];
      if (callback !== null && nowMs >= this.rpcExpiresMs[i]) {
        this.rpcCallbacks[i] = null;
        callback(rpcStatusExpired, '');
      }
    }
    if (!this.running) return;
    const status = this.status;
    // [SYNC-25] Sent but not acknowledged for too long (an ack was lost, or the cloud restarted
    // behind a broker that stayed up): send events and state again from the last acknowledgement.
    if (status.sessionOpen && (this.sentSeq > 0 || this.backlogSentSeq > 0) && nowMs - this.lastAckMs > syncAckTimeoutMs) {
      this.sentSeq = 0;
      this.backlogSentSeq = 0;
      this.lastAckMs = nowMs;
    }
    // The same for state, on its own clock: event acks arriving meanwhile say nothing about it.
    if (status.sessionOpen && this.stateSentMs >= 0 && nowMs - this.stateSentMs > syncAckTimeoutMs) {
      for (let k = 0; k < this.stateSent.length; k++) this.stateSent[k] = 0;
      this.stateSentMs = -1;
    }
    if (this.options.mode === syncModePeriodic) {
      if (status.sessionOpen && !this.hasUnacked()) {
        if (this.idleSinceMs < 0) this.idleSinceMs = nowMs;
        if (nowMs - this.idleSinceMs >= syncPeriodicIdleMs) {
          this.link.stop();
          status.connected = false;
          status.sessionOpen = false;
          this.nextPeriodicMs = nowMs + this.options.periodMs;
        }
      } else {
        this.idleSinceMs = -1;
      }
      if (!status.connected && nowMs >= this.nextPeriodicMs && this.nextPeriodicMs > 0) {
        this.nextPeriodicMs = 0;
        this.link.start(nowMs);
      } else if (!status.connected && this.nextPeriodicMs > 0 && (this.cache.bytesUsed >= this.options.fillBytesTrigger || (this.backlog !== null && this.backlog.fillPercent() >= syncFlashFillPercentTrigger))) {
        this.nextPeriodicMs = 0;
        this.link.start(nowMs);
      }
    }
    this.pump();
  }

  /**
   * Age of the oldest cached event in seconds: an upper bound (the time since the cache was last
   * empty), since the ring keeps no timestamps of its own.
   */
  oldestEventAgeSec(): number {
    return this.cache.totalCount() === 0 ? 0 : Math.floor((this.clock.nowMs() - this.cacheSinceMs) / 1000);
  }

  /** Events in the cache and RPCs waiting: what a session still has to deliver. */
  private hasUnacked(): boolean {
    if (this.cache.totalCount() > 0 || this.state.changedCount() > 0) return true;
    if (this.backlog !== null && this.backlog.backlogEpoch() !== 0) return true;
    for (let i = 0; i < rpcPendingMax; i++) if (this.rpcCallbacks[i] !== null) return true;
    return false;
  }

  private publish(length: number): boolean {
    const code = this.link.publish(this.up, this.out.subarray(0, length), 1, false);
    if (code < 0) return false;
    this.status.bytesSent += length;
    return true;
  }

  /**
   * [SYNC-1] HELLO: epoch, last message applied, template hashes, cloud-owned state versions (the
   * firmware version travels as state, not here). When
   * the MQTT window is full (old messages being retransmitted) it is tried again on every tick.
   */
  private sendHello(): void {
    const out = this.out;
    const end = out.length;
    out[0] = syncHello;
    out[1] = syncProtocolVersion;
    let at = writeSyncVarint(out, 2, end, this.options.epoch);
    at = writeSyncVarint(out, at, end, this.lastMessageSeq);
    at = writeU32(out, at, this.options.stateTemplateHash);
    out[at++] = this.templates.length;
    for (let i = 0; i < this.templates.length; i++) at = writeU32(out, at, this.templates[i].hash);
    const fields = this.stateTemplate.fields;
    let keys = 0;
    const keysAt = at++;
    for (let k = 0; k < fields.length; k++) {
      if (fields[k].owner !== stateOwnerCloud) continue;
      out[at++] = k;
      at = writeSyncVarint(out, at, end, this.state.version(k));
      keys++;
    }
    out[keysAt] = keys;
    if (at < 0 || at > end) throw new Error('sync: HELLO does not fit');
    this.helloPending = !this.publish(at);
  }

  /** [SYNC-10] [SYNC-21] The session is open: purge what the cloud already holds, then send. */
  private handleWelcome(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    const epoch = readSyncVarint(bytes, cursor, end);
    const committedSeq = readSyncVarint(bytes, cursor, end);
    if (epoch < 0 || committedSeq < 0) return;
    const status = this.status;
    status.sessionOpen = true;
    this.sentSeq = 0;
    this.backlogSentSeq = 0;
    this.lastAckMs = this.clock.nowMs();
    for (let k = 0; k < this.stateSent.length; k++) this.stateSent[k] = 0;
    if (epoch === this.options.epoch && committedSeq > 0) {
      this.cache.ack(committedSeq);
      if (committedSeq > status.ackedSeq) status.ackedSeq = committedSeq;
    }
    const backlog = this.backlog;
    const earlier = backlog === null ? 0 : backlog.backlogCount();
    this.log.info('sync: session open, ' + this.cache.totalCount() + ' events to send' + (earlier > 0 ? ', ' + earlier + ' of boot ' + backlog!.backlogEpoch() : ''));
  }

  private handleEventsAck(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    const epoch = readSyncVarint(bytes, cursor, end);
    const seq = readSyncVarint(bytes, cursor, end);
    if (seq < 0 || epoch < 1) return;
    if (epoch === this.options.epoch) {
      this.cache.ack(seq);
      if (seq > this.status.ackedSeq) this.status.ackedSeq = seq;
    } else if (epoch < this.options.epoch && this.backlog !== null) {
      // [SYNC-33] An earlier boot's events, sent from the flash tier.
      this.backlog.ackBacklog(epoch, seq);
    } else {
      return;
    }
    this.lastAckMs = this.clock.nowMs();
    if (!this.hasUnacked()) this.finishSync(true);
  }

  /** [SYNC-12] Cloud-owned values: store the newer ones, then say which versions we hold. */
  private handleStateSet(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    if (cursor.position >= end) return;
    const count = bytes[cursor.position++];
    const out = this.out;
    out[0] = syncStateApplied;
    const countAt = 1;
    let at = 2;
    let applied = 0;
    for (let i = 0; i < count; i++) {
      if (cursor.position >= end) return;
      const keyId = bytes[cursor.position++];
      const version = readSyncVarint(bytes, cursor, end);
      if (version < 0 || cursor.position >= end) return;
      const length = bytes[cursor.position++];
      if (cursor.position + length > end) return;
      const fields = this.stateTemplate.fields;
      if (keyId < fields.length && fields[keyId].owner === stateOwnerCloud) {
        if (version > this.state.version(keyId)) {
          const code = this.state.applyCloudValue(keyId, bytes, cursor.position, length, version);
          if (code === 0) this.events.onStateChanged(keyId);
          else this.log.warn('sync: cloud value for key ' + keyId + ' refused (' + code + ')');
        }
        out[at++] = keyId;
        at = writeSyncVarint(out, at, out.length, this.state.version(keyId));
        applied++;
      }
      cursor.position += length;
    }
    out[countAt] = applied;
    if (applied > 0 && at > 0) this.publish(at);
  }

  /** [SYNC-13] The cloud stored these device-owned versions. */
  private handleStateAck(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    if (cursor.position >= end) return;
    const count = bytes[cursor.position++];
    for (let i = 0; i < count; i++) {
      if (cursor.position >= end) return;
      const keyId = bytes[cursor.position++];
      const version = readSyncVarint(bytes, cursor, end);
      if (version < 0) return;
      if (keyId < this.stateTemplate.fields.length) this.state.ack(keyId, version);
    }
    this.stateSentMs = this.state.changedCount() > 0 ? this.clock.nowMs() : -1;
    if (!this.hasUnacked()) this.finishSync(true);
  }

  /**
   * [SYNC-14] [SYNC-26] Deliver each message once and in order: apply, persist its seq, then
   * acknowledge. A message names the seq it follows; one that follows a seq this device has not
   * applied (a gap: an earlier message is still on its way) is not applied, and the ack of the
   * last one applied makes the cloud send again from there.
   */
  private handleMessage(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    const seq = readSyncVarint(bytes, cursor, end);
    const follows = readSyncVarint(bytes, cursor, end);
    if (seq < 0 || follows < 0) return;
    if (seq <= this.lastMessageSeq) {
      this.status.duplicates++;
    } else if (follows <= this.lastMessageSeq) {
      this.events.onMessage(seq, bytesToByteString(bytes, cursor.position, end));
      this.lastMessageSeq = seq;
      const key = this.options.messageSeqKeyId;
      if (key >= 0 && this.state.setNumber(key, seq) === 0) this.state.ack(key, this.state.version(key));
    } else {
      this.messageGap = true;
    }
    this.messageAckPending = true;
    this.sendMessageAck();
  }

  /** [SYNC-4] Acknowledges the last message applied; retried from pump() while the window is full. */
  private sendMessageAck(): void {
    const out = this.out;
    out[0] = syncMessageAck;
    const at = writeSyncVarint(out, 1, out.length, this.lastMessageSeq);
    // Flags: 1 = a message after a gap was refused; send again from this seq.
    out[at] = this.messageGap ? 1 : 0;
    if (this.publish(at + 1)) {
      this.messageAckPending = false;
      this.messageGap = false;
    }
  }

  private handleRpcResult(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    const epoch = readSyncVarint(bytes, cursor, end);
    const id = readSyncVarint(bytes, cursor, end);
    if (epoch !== this.options.epoch || id < 0 || cursor.position >= end) return;
    const status = bytes[cursor.position++];
    for (let i = 0; i < rpcPendingMax; i++) {
      const callback = this.rpcCallbacks[i];
      if (callback === null || this.rpcIds[i] !== id) continue;
      this.rpcCallbacks[i] = null;
      callback(status, bytesToByteString(bytes, cursor.position, end));
      return;
    }
    // A result for a call already answered (a replayed downlink): nothing to do.
    this.status.duplicates++;
  }

  private handleError(bytes: Uint8Array, cursor: SyncCursor, end: number): void {
    if (cursor.position >= end) return;
    const code = bytes[cursor.position++];
    const detail = bytesToByteString(bytes, cursor.position, end);
    this.log.error('sync: cloud error ' + code + ': ' + detail);
    // [SYNC-16] The cloud lost our session (it restarted, or saw an old connection close after this
    // one opened): open it again; everything unacknowledged goes out again after WELCOME.
    if (code === syncErrorNoSession) {
      this.status.sessionOpen = false;
      this.sentSeq = 0;
      this.backlogSentSeq = 0;
      this.sendHello();
    }
    this.events.onCloudError(code, detail);
  }

  private finishSync(ok: boolean): void {
    this.status.lastSyncMs = this.clock.nowMs();
    this.status.lastSyncOk = ok;
    this.events.onSyncOutcome(ok);
  }

  /** [SYNC-22] Sends what is due, in order: state, events, RPC calls, as the MQTT window allows. */
  private pump(): void {
    if (!this.status.sessionOpen) {
      if (this.status.connected && this.helloPending) this.sendHello();
      return;
    }
    if (this.messageAckPending) this.sendMessageAck();
    if (!this.sendState()) return;
    // [SYNC-22] One EVENTS message in flight at a time: the MQTT window keeps room for the small
    // messages (HELLO, acks, state) that must not wait behind a kilobyte of events.
    if (this.link.inFlight() === 0) this.sendEventFrame();
    this.sendRpcCalls();
  }

  /** [SYNC-3] Device-owned keys changed since the cloud's last ack, not yet sent this session. */
  private sendState(): boolean {
    const fields = this.stateTemplate.fields;
    const state = this.state;
    const out = this.out;
    out[0] = syncStateReport;
    let at = 2;
    let count = 0;
    for (let k = 0; k < fields.length; k++) {
      const field = fields[k];
      if (field.owner !== stateOwnerDevice || field.name.charAt(0) === '_' || !state.isChanged(k)) continue;
      const version = state.version(k);
      if (this.stateSent[k] === version) continue;
      if (at + 6 + field.maxLength > out.length) break;
      out[at++] = k;
      at = writeSyncVarint(out, at, out.length, version);
      const length = state.readBytes(k, out, at + 1);
      out[at] = length;
      at += 1 + length;
      this.stateSent[k] = version;
      count++;
    }
    if (count === 0) return true;
    out[1] = count;
    if (this.publish(at)) {
      this.stateSentMs = this.clock.nowMs();
      return true;
    }
    for (let k = 0; k < fields.length; k++) this.stateSent[k] = 0;
    return false;
  }

  /**
   * [SYNC-2] [SYNC-33] One EVENTS message: an earlier boot's events while the flash tier holds
   * some not yet sent, else this boot's. Returns true when it sent one.
   */
  private sendEventFrame(): boolean {
    const backlog = this.backlog;
    if (backlog !== null) {
      const epoch = backlog.backlogEpoch();
      if (epoch !== 0) {
        if (epoch !== this.backlogSentEpoch) {
          this.backlogSentEpoch = epoch;
          this.backlogSentSeq = 0;
        }
        const sent = this.sendEvents(epoch, backlog.backlogOldestSeq(), this.backlogSentSeq);
        // All of the backlog is on its way: this boot's events may follow.
        if (sent !== 0) return sent > 0;
      }
    }
    if (this.cache.totalCount() === 0) return false;
    return this.sendEvents(this.options.epoch, this.cache.oldestSeq(), this.sentSeq) > 0;
  }

  /**
   * [SYNC-2] One EVENTS message of `epoch`: the events after `afterSeq`, oldest first, as frames
   * (a new frame where the template changes or a frame is full), each behind its u16 length, as
   * many as fit one message. Returns 1 when it sent one, 0 when nothing was left to send, -1 when
   * the MQTT window refused it.
   */
  private sendEvents(epoch: number, oldestSeq: number, afterSeq: number): number {
    const out = this.out;
    out[0] = syncEvents;
    // [SYNC-2] The oldest event still held tells the cloud that anything older was acknowledged
    // or dropped (and reported), so a gap never stalls its acknowledgements.
    let at = writeSyncVarint(out, 1, eventsHeaderBytesMax, epoch);
    at = writeSyncVarint(out, at, eventsHeaderBytesMax, oldestSeq);
    const end = at + wireFrameBytesMax;
    let frames = 0;
    let frameBytes = 0;
    // Each round adds one frame of at least one event, or ends the message.
    while (end - at >= eventsFrameRoomMin) {
      const frameAt = at + 2;
      const lastSeq = this.encodeFrame(epoch, afterSeq, frameAt, end);
      if (lastSeq <= 0) break;
      const frameLength = frameEncodeFinish(this.encoder);
      out[at] = frameLength & 0xff;
      out[at + 1] = frameLength >> 8;
      at = frameAt + frameLength;
      afterSeq = lastSeq;
      frames++;
      frameBytes += frameLength;
    }
    if (frames === 0) return 0;
    if (!this.publish(at)) return -1;
    if (epoch === this.options.epoch) this.sentSeq = afterSeq;
    else this.backlogSentSeq = afterSeq;
    this.status.eventMessagesSent++;
    this.status.framesSent += frames;
    this.status.frameBytesSent += frameBytes;
    return 1;
  }

  /** Reads the events of `epoch` after `afterSeq` into `batch`; says what it read. */
  private readEvents(epoch: number, afterSeq: number): EventBatch {
    const backlog = this.backlog;
    if (epoch !== this.options.epoch && backlog !== null) {
      const info = this.backlogBatch;
      info.firstSeq = 0;
      info.count = 0;
      info.bytes = 0;
      backlog.readBacklog(afterSeq, this.batch, 0, this.batch.length, info);
      return info;
    }
    this.cache.readBatch(afterSeq, this.batch, 0, this.batch.length);
    return this.cache.batch;
  }

  /**
   * Starts a frame at out[frameAt] and appends the events after `afterSeq` while they share the
   * first one's template and fit before `end`, reading the cache a batch buffer at a time.
   * Returns the seq of the last event appended (0: nothing left or nothing fits).
   */
  private encodeFrame(epoch: number, afterSeq: number, frameAt: number, end: number): number {
    const batch = this.batch;
    let read = this.readEvents(epoch, afterSeq);
    if (read.count === 0) return 0;
    const firstSeq = read.firstSeq;
    const templateId = batch[eventBatchHeaderBytes];
    const template = this.templateById(templateId);
    const enc = this.encoder;
    if (template === null) {
      this.log.error('sync: cached event ' + firstSeq + ' has unknown template ' + templateId);
      return 0;
    }
    if (frameEncodeBegin(enc, template, this.out, frameAt, end - frameAt, firstSeq) !== 0) return 0;
    let appended = 0;
    let last = afterSeq;
    let frameFull = false;
    // Each round appends at least one event or ends the frame, so this ends within the cache's count.
    while (!frameFull) {
      const count = read.count;
      const batchFirst = read.firstSeq;
      let at = 0;
      for (let i = 0; i < count; i++) {
        const length = batch[at] | (batch[at + 1] << 8);
        const recordAt = at + eventBatchHeaderBytes;
        if (batch[recordAt] !== templateId || frameEncodeAppendRecord(enc, batch, recordAt + eventTemplateIdBytes, recordAt + length) !== 0) {
          frameFull = true;
          break;
        }
        appended++;
        last = batchFirst + i;
        at = recordAt + length;
      }
      if (frameFull) break;
      read = this.readEvents(epoch, last);
      if (read.count === 0) break;
    }
    if (appended === 0) {
      this.log.error('sync: cached event ' + firstSeq + ' does not fit a frame');
      return 0;
    }
    return last;
  }

  /** [SYNC-6] RPC requests not yet sent in this session. */
  private sendRpcCalls(): void {
    for (let i = 0; i < rpcPendingMax; i++) {
      if (this.rpcCallbacks[i] === null || this.rpcSent[i] === 1) continue;
      const out = this.out;
      out[0] = syncRpcCall;
      let at = writeSyncVarint(out, 1, out.length, this.options.epoch);
      at = writeSyncVarint(out, at, out.length, this.rpcIds[i]);
      const remainingMs = this.rpcExpiresMs[i] - this.clock.nowMs();
      at = writeSyncVarint(out, at, out.length, remainingMs > 0 ? Math.ceil(remainingMs / 1000) : 0);
      at = writeShortString(out, at, out.length, this.rpcRoutes[i]);
      const args = this.rpcArgs[i];
      if (at < 0 || at + args.length > out.length) continue;
      for (let c = 0; c < args.length; c++) out[at + c] = args.charCodeAt(c) & 0xff;
      if (!this.publish(at + args.length)) return;
      this.rpcSent[i] = 1;
    }
  }

  private templateById(id: number): Template | null {
    for (let i = 0; i < this.templates.length; i++) if (this.templates[i].id === id) return this.templates[i];
    return null;
  }
}

