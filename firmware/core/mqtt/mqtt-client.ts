// The device's MQTT 3.1.1 client: QoS 0/1 publish with a bounded in-flight window and retransmit
// (DUP), subscribe, keepalive with dead-link detection, a presence Last Will, and reconnect with
// exponential backoff and jitter. Driven by tick(nowMs) and socket events; every buffer is
// allocated in the constructor. See README.md in this folder for the design.
import type { Network, Socket, SocketHandlers } from '../../hal/socket.ts';
import type { Random } from '../../hal/random.ts';
import {
  mqttAuthRetryMs, mqttBackoffMsMax, mqttBackoffMsMin, mqttInFlightBytesMax, mqttInFlightMessagesMax,
  mqttKeepAliveSec, mqttPacketBytesMax, mqttReceiveBufferBytes, mqttResponseTimeoutMs, mqttRetransmitMs,
} from '../../protocol/limits.ts';
import {
  mqttConnack, mqttDisconnect, mqttErrorConnectionLost, mqttErrorNotConnected, mqttErrorRefusedCredentials,
  mqttErrorRefusedNotAuthorized, mqttErrorStopped, mqttErrorTimeout, mqttErrorTooLarge, mqttErrorUnexpected,
  mqttErrorWindowFull, mqttOk, mqttPingreq, mqttPingresp, mqttPuback, mqttPublish, mqttSuback,
} from './mqtt-codes.ts';
import {
  encodeConnect, encodeEmpty, encodePuback, encodePublish, encodeSubscribe, publishPacketBytes,
  type MqttConnectFields,
} from './mqtt-encoder.ts';
import { MqttPacketParser, type MqttPacketSink } from './mqtt-parser.ts';

/** What the client tells its owner. One object for the client's life: no closures per message. */
export interface MqttClientEvents {
  /** CONNACK accepted. When sessionPresent is false the broker forgot the subscriptions: subscribe again. */
  onConnect(sessionPresent: boolean): void;
  /** A PUBLISH arrived; the payload is bytes[offset, offset + length), valid during this call only. */
  onMessage(topic: string, bytes: Uint8Array, offset: number, length: number): void;
  /** The broker acknowledged the QoS 1 publish that publish() returned this id for. */
  onPublishAcked(packetId: number): void;
  /** SUBACK: grantedQos 0 or 1, or 128 when the broker refused the subscription. */
  onSubscribeAcked(packetId: number, grantedQos: number): void;
  /** The connection ended or an attempt failed; `code` is an mqtt* code saying why. */
  onDisconnect(code: number): void;
}

export interface MqttClientOptions {
  host: string;
  port: number;
  secure: boolean;
  clientId: string;
  username: string | null;
  password: string | null;
  /** Retained "1" on every connect and Last Will (QoS 1, retained) "0"; null for none. */
  presenceTopic: string | null;
  /** false keeps the broker session (subscriptions, queued QoS 1 messages) across connections. */
  cleanSession: boolean;
  // Timing; absent means the value from limits.ts. Tests shorten them.
  keepAliveSec?: number;
  responseTimeoutMs?: number;
  retransmitMs?: number;
  backoffMsMin?: number;
  backoffMsMax?: number;
  authRetryMs?: number;
}

export const mqttStateStopped = 0;
/** Waiting for the backoff delay to pass before the next connection attempt. */
export const mqttStateWaiting = 1;
/** TCP (or TLS) connection being opened. */
export const mqttStateOpening = 2;
/** CONNECT sent, waiting for CONNACK. */
export const mqttStateConnecting = 3;
export const mqttStateConnected = 4;

function orDefault(value: number | undefined, fallback: number): number {
  return value === undefined ? fallback : value;
}

/**
 * Forwards one connection's socket events to the client, tagged with the connection's
 * generation, so that late events of a connection the client already gave up are ignored.
 * One of these per connection attempt, never per packet.
 */
class MqttSocketAdapter implements SocketHandlers {
  declare private readonly client: MqttClient;
  declare private readonly generation: number;
  constructor(client: MqttClient, generation: number) {
    this.client = client;
    this.generation = generation;
  }
  onConnect(): void {
    if (this.client.generation === this.generation) this.client.handleSocketConnect();
  }
  onData(bytes: string): void {
    if (this.client.generation === this.generation) this.client.handleSocketData(bytes);
  }
  onClose(hadError: boolean): void {
    if (this.client.generation === this.generation) this.client.fail(mqttErrorConnectionLost);
  }
}

// The in-flight store keeps encoded QoS 1 publishes in send order, in a byte ring where each
// packet is contiguous (one that does not fit before the end goes to offset 0). Entries form a ring
// of `inFlightCount` slots from `inFlightHead`, described by `entries` with these fields per slot;
// an entry acked out of order is freed when it reaches the head.
const entryPacketId = 0;
const entryOffset = 1;
const entryLength = 2;
const entryAcked = 3;
/** Last time the entry went out on the wire; -1 when it never has. */
const entrySentMs = 4;
const entryFields = 5;

export class MqttClient implements MqttPacketSink {
  // Fields are `declare`d and set in the constructor: field initialisers would pull a
  // define-property helper into the bundle.
  declare state: number;
  /** Bumped whenever a connection is opened or abandoned; events of older ones are ignored. */
  declare generation: number;
  declare private readonly network: Network;
  declare private readonly random: Random;
  declare private readonly events: MqttClientEvents;
  declare private readonly options: MqttClientOptions;
  declare private readonly connectFields: MqttConnectFields;
  declare private readonly parser: MqttPacketParser;
  /** Scratch for everything sent but QoS 1 publishes, which are encoded straight into the store. */
  declare private readonly transmit: Uint8Array;
  declare private readonly store: Uint8Array;
  declare private readonly entries: Float64Array;
  declare private inFlightHead: number;
  declare private inFlightCount: number;

  declare private socket: Socket | null;
  declare private nowMs: number;
  declare private stateSinceMs: number;
  declare private nextAttemptMs: number;
  declare private failedAttempts: number;
  declare private lastSentMs: number;
  declare private lastReceivedMs: number;
  /** When the outstanding PINGREQ went out; -1 when none is outstanding. */
  declare private pingSentMs: number;
  declare private nextPacketId: number;

  declare private readonly keepAliveMs: number;
  declare private readonly responseTimeoutMs: number;
  declare private readonly retransmitMs: number;
  declare private readonly backoffMsMin: number;
  declare private readonly backoffMsMax: number;
  declare private readonly authRetryMs: number;

  constructor(network: Network, random: Random, events: MqttClientEvents, options: MqttClientOptions) {
    this.network = network;
    this.random = random;
    this.events = events;
    this.options = options;
    const keepAliveSec = orDefault(options.keepAliveSec, mqttKeepAliveSec);
    this.keepAliveMs = keepAliveSec * 1000;
    this.responseTimeoutMs = orDefault(options.responseTimeoutMs, mqttResponseTimeoutMs);
    this.retransmitMs = orDefault(options.retransmitMs, mqttRetransmitMs);
    this.backoffMsMin = orDefault(options.backoffMsMin, mqttBackoffMsMin);
    this.backoffMsMax = orDefault(options.backoffMsMax, mqttBackoffMsMax);
    this.authRetryMs = orDefault(options.authRetryMs, mqttAuthRetryMs);
    this.connectFields = {
      clientId: options.clientId,
      username: options.username,
      password: options.username === null ? null : options.password,
      cleanSession: options.cleanSession,
      keepAliveSec: keepAliveSec,
      willTopic: options.presenceTopic,
      willPayload: '0',
      willQos: 1,
      willRetain: true,
    };
    this.parser = new MqttPacketParser(mqttReceiveBufferBytes);
    this.transmit = new Uint8Array(mqttPacketBytesMax);
    this.store = new Uint8Array(mqttInFlightBytesMax);
    this.entries = new Float64Array(mqttInFlightMessagesMax * entryFields);
    this.state = mqttStateStopped;
    this.socket = null;
    this.generation = this.inFlightHead = this.inFlightCount = this.nowMs = this.stateSinceMs = 0;
    this.nextAttemptMs = this.failedAttempts = this.lastSentMs = this.lastReceivedMs = 0;
    this.pingSentMs = -1;
    this.nextPacketId = 1;
  }

  /** Starts connecting now; afterwards the client reconnects by itself until stop(). */
  start(nowMs: number): void {
    this.nowMs = nowMs;
    if (this.state === mqttStateStopped) this.open();
  }

  /** Publishes presence "0", sends DISCONNECT (so no Last Will) and closes. In-flight messages stay. */
  stop(): void {
    if (this.state === mqttStateStopped) return;
    if (this.state === mqttStateConnected) {
      if (this.options.presenceTopic !== null) this.publish(this.options.presenceTopic, '0', 0, true);
      this.send(this.transmit, 0, encodeEmpty(this.transmit, 0, mqttDisconnect));
    }
    this.abandon();
    this.state = mqttStateStopped;
    this.events.onDisconnect(mqttErrorStopped);
  }

  /** QoS 1 publishes not acknowledged yet (accepted while offline included). */
  inFlight(): number {
    let unacked = 0;
    for (let k = 0; k < this.inFlightCount; k++) if (this.entries[this.entryAt(k) + entryAcked] === 0) unacked++;
    return unacked;
  }

  /**
   * Publishes `payload` (bytes or a byte string). QoS 1 returns the packet id (1..65535) that
   * onPublishAcked will report, and is accepted while disconnected too (sent on connect); QoS 0
   * returns mqttOk. Errors: mqttErrorWindowFull (publish again after an ack), mqttErrorTooLarge,
   * mqttErrorNotConnected (QoS 0 only).
   */
  publish(topic: string, payload: string | Uint8Array, qos: number, retain: boolean): number {
    if (qos !== 0 && qos !== 1) throw new Error('MQTT qos must be 0 or 1');
    const bytes = publishPacketBytes(topic.length, payload.length, qos);
    if (bytes > mqttPacketBytesMax) return mqttErrorTooLarge;
    if (qos === 0) {
      if (this.state !== mqttStateConnected) return mqttErrorNotConnected;
      this.send(this.transmit, 0, encodePublish(this.transmit, 0, topic, payload, 0, retain, false, 0));
      return mqttOk;
    }
    const offset = this.allocate(bytes);
    if (offset < 0) return mqttErrorWindowFull;
    const packetId = this.newPacketId();
    encodePublish(this.store, offset, topic, payload, 1, retain, false, packetId);
    const entry = this.entryAt(this.inFlightCount++);
    const entries = this.entries;
    entries[entry + entryPacketId] = packetId;
    entries[entry + entryOffset] = offset;
    entries[entry + entryLength] = bytes;
    entries[entry + entryAcked] = 0;
    entries[entry + entrySentMs] = -1;
    if (this.state === mqttStateConnected) this.sendEntry(entry);
    return packetId;
  }

  /** Subscribes to one topic filter; returns the packet id onSubscribeAcked reports, or an error. */
  subscribe(topicFilter: string, qos: number): number {
    if (this.state !== mqttStateConnected) return mqttErrorNotConnected;
    const packetId = this.newPacketId();
    const bytes = encodeSubscribe(this.transmit, 0, packetId, topicFilter, qos);
    if (bytes < 0) return bytes;
    this.send(this.transmit, 0, bytes);
    return packetId;
  }

  /** Does what is due at `nowMs`: connection attempts, timeouts, keepalive, retransmits. */
  tick(nowMs: number): void {
    this.nowMs = nowMs;
    const state = this.state;
    if (state === mqttStateWaiting) {
      if (nowMs >= this.nextAttemptMs) this.open();
    } else if (state === mqttStateOpening || state === mqttStateConnecting) {
      if (nowMs - this.stateSinceMs >= this.responseTimeoutMs) this.fail(mqttErrorTimeout);
    } else if (state === mqttStateConnected) {
      if (this.pingSentMs >= 0) {
        if (nowMs - this.pingSentMs >= this.responseTimeoutMs) {
          this.fail(mqttErrorTimeout);
          return;
        }
      } else if (this.keepAliveMs > 0 && (nowMs - this.lastSentMs >= this.keepAliveMs || nowMs - this.lastReceivedMs >= this.keepAliveMs)) {
        // Quiet in either direction: ask, so a half-dead link is found within keepalive + timeout.
        this.pingSentMs = nowMs;
        this.send(this.transmit, 0, encodeEmpty(this.transmit, 0, mqttPingreq));
      }
      for (let k = 0; k < this.inFlightCount; k++) {
        const entry = this.entryAt(k);
        if (this.entries[entry + entryAcked] === 0 && nowMs - this.entries[entry + entrySentMs] >= this.retransmitMs) this.sendEntry(entry);
      }
    }
  }

  // Called by MqttSocketAdapter (public for it only).

  handleSocketConnect(): void {
    if (this.state !== mqttStateOpening) return;
    this.state = mqttStateConnecting;
    this.send(this.transmit, 0, encodeConnect(this.transmit, 0, this.connectFields));
  }

  handleSocketData(bytes: string): void {
    this.lastReceivedMs = this.nowMs;
    const generation = this.generation;
    const code = this.parser.feed(bytes, this);
    // A different generation means an event handler stopped or restarted the client: not a failure.
    if (code !== mqttOk && this.generation === generation) this.fail(code);
  }

  /** Drops the connection for `code` and schedules the next attempt. */
  fail(code: number): void {
    if (this.state === mqttStateStopped) return;
    this.abandon();
    let delay;
    if (code === mqttErrorRefusedCredentials || code === mqttErrorRefusedNotAuthorized) {
      // Retrying fast with the same credentials cannot help and may get the device banned.
      delay = this.authRetryMs;
    } else {
      let ceiling = this.backoffMsMin;
      for (let k = 0; k < this.failedAttempts && ceiling < this.backoffMsMax; k++) ceiling *= 2;
      if (ceiling > this.backoffMsMax) ceiling = this.backoffMsMax;
      // Equal jitter: somewhere in [ceiling / 2, ceiling], so a fleet does not reconnect in step.
      const half = Math.floor(ceiling / 2);
      delay = ceiling - half + (this.random.nextUint32() % (half + 1));
    }
    this.failedAttempts++;
    this.state = mqttStateWaiting;
    this.nextAttemptMs = this.nowMs + delay;
    this.events.onDisconnect(code);
  }

  /** Milliseconds until the next connection attempt (0 when not waiting). */
  retryInMs(): number {
    return this.state === mqttStateWaiting ? this.nextAttemptMs - this.nowMs : 0;
  }

  /** MqttPacketSink: one complete, well-formed packet from the broker. */
  onPacket(packet: MqttPacketParser): number {
    const generation = this.generation;
    const type = packet.type;
    if (this.state === mqttStateConnecting) {
      if (type !== mqttConnack) return mqttErrorUnexpected;
      if (packet.returnCode !== 0) return -10 - packet.returnCode;
      this.state = mqttStateConnected;
      this.failedAttempts = 0;
      this.pingSentMs = -1;
      if (this.options.presenceTopic !== null) this.publish(this.options.presenceTopic, '1', 0, true);
      // [MQTT-4.4.0-1]: resend unacknowledged publishes in their original order, DUP set.
      for (let k = 0; k < this.inFlightCount; k++) {
        const entry = this.entryAt(k);
        if (this.entries[entry + entryAcked] === 0) this.sendEntry(entry);
      }
      this.events.onConnect(packet.sessionPresent);
    } else if (this.state !== mqttStateConnected) {
      return mqttErrorStopped;
    } else if (type === mqttPublish) {
      const body = packet.body;
      let topic = '';
      const topicEnd = 2 + packet.topicLength;
      for (let i = 2; i < topicEnd; i++) topic += String.fromCharCode(body[i]);
      this.events.onMessage(topic, body, packet.payloadOffset, packet.remaining - packet.payloadOffset);
      // Acknowledged after the owner has had it: a crash in between means a redelivery, not a loss.
      if (packet.qos === 1 && this.generation === generation) {
        this.send(this.transmit, 0, encodePuback(this.transmit, 0, packet.packetId));
      }
    } else if (type === mqttPuback) {
      this.acknowledge(packet.packetId);
    } else if (type === mqttSuback) {
      this.events.onSubscribeAcked(packet.packetId, packet.returnCode);
    } else if (type === mqttPingresp) {
      this.pingSentMs = -1;
    } else {
      return mqttErrorUnexpected;
    }
    return this.generation === generation ? mqttOk : mqttErrorStopped;
  }

  private open(): void {
    this.generation++;
    this.state = mqttStateOpening;
    this.stateSinceMs = this.nowMs;
    this.lastSentMs = this.nowMs;
    this.lastReceivedMs = this.nowMs;
    this.parser.reset();
    const generation = this.generation;
    const options = this.options;
    const socket = this.network.connect(options.host, options.port, options.secure, new MqttSocketAdapter(this, generation));
    // The HAL may report a failed connect before connect() returns: then the socket is stale.
    if (this.generation === generation) this.socket = socket;
  }

  /** Forgets the current connection: its late events are ignored from here on. */
  private abandon(): void {
    this.generation++;
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) socket.close();
  }

  private send(bytes: Uint8Array, offset: number, length: number): void {
    if (this.socket === null) return;
    this.lastSentMs = this.nowMs;
    // A false return means the socket closed; its onClose follows and reconnects.
    this.socket.write(bytes, offset, length);
  }

  /** Index into `entries` of the k-th oldest in-flight entry. */
  private entryAt(k: number): number {
    return ((this.inFlightHead + k) % mqttInFlightMessagesMax) * entryFields;
  }

  private sendEntry(entry: number): void {
    const entries = this.entries;
    const offset = entries[entry + entryOffset];
    if (entries[entry + entrySentMs] >= 0) this.store[offset] |= 8;
    entries[entry + entrySentMs] = this.nowMs;
    this.send(this.store, offset, entries[entry + entryLength]);
  }

  private acknowledge(packetId: number): void {
    const entries = this.entries;
    for (let k = 0; k < this.inFlightCount; k++) {
      const entry = this.entryAt(k);
      if (entries[entry + entryPacketId] === packetId && entries[entry + entryAcked] === 0) {
        entries[entry + entryAcked] = 1;
        // Free from the head first, so that the owner may publish again from onPublishAcked.
        while (this.inFlightCount > 0 && entries[this.entryAt(0) + entryAcked] === 1) {
          this.inFlightHead = (this.inFlightHead + 1) % mqttInFlightMessagesMax;
          this.inFlightCount--;
        }
        this.events.onPublishAcked(packetId);
        return;
      }
    }
    // An ack for an id no longer in flight (a retransmit acked twice) is harmless.
  }

  /** Byte offset in the store for a packet of `bytes`, or -1 when the window is full. */
  private allocate(bytes: number): number {
    const count = this.inFlightCount;
    if (count === mqttInFlightMessagesMax) return -1;
    if (count === 0) return bytes <= mqttInFlightBytesMax ? 0 : -1;
    const entries = this.entries;
    const headOffset = entries[this.entryAt(0) + entryOffset];
    const last = this.entryAt(count - 1);
    const lastOffset = entries[last + entryOffset];
    const tailOffset = lastOffset + entries[last + entryLength];
    if (lastOffset >= headOffset) {
      // Not wrapped: the free space is after the tail and before the head.
      if (tailOffset + bytes <= mqttInFlightBytesMax) return tailOffset;
      return bytes <= headOffset ? 0 : -1;
    }
    return tailOffset + bytes <= headOffset ? tailOffset : -1;
  }

  /**
   * Packet ids count 1..65535 and wrap. No id in the store can come round again: the store holds
   * at most mqttInFlightMessagesMax consecutive ids, and a new one needs a free slot, which only
   * the oldest entry's ack can make. (Subscribe ids are not stored; 65,000 subscribes while one
   * publish waits for its ack would be a bug elsewhere.)
   */
  private newPacketId(): number {
    const packetId = this.nextPacketId;
    this.nextPacketId = packetId === 65535 ? 1 : packetId + 1;
    return packetId;
  }
}
