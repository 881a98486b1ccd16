// One Tandem device assembled from its hardware: state store, event cache, MQTT client and sync
// engine, driven by one tick. The firmware main passes Espruino's HAL; tests and simulations pass
// the PC mocks. Everything is allocated here, at start-up.
import type { Clock, Timers } from '../hal/clock.ts';
import type { Flash } from '../hal/flash.ts';
import type { Log } from '../hal/log.ts';
import type { Random } from '../hal/random.ts';
import type { Network } from '../hal/socket.ts';
import type { Crc32 } from '../protocol/crc32.ts';
import type { DeviceConfig } from '../protocol/device-config.ts';
import { putU32 } from '../protocol/bits.ts';
import { eventCacheBytesMax, spillFlushDelayMs, stateStoreCoalesceWindowMs } from '../protocol/limits.ts';
import { keyIdOf, stateTemplateHash, type StateTemplate } from '../protocol/state-template.ts';
import type { Template, WireValue } from '../protocol/template.ts';
import { eventsDroppedTemplate } from '../protocol/templates/events-dropped.ts';
import { presenceTopic } from '../protocol/topics.ts';
import { EventCache, overflowDropOldest } from './event-cache.ts';
import { createEventSpill, eventSpillDefaults, spillErrorFlash, type EventSpill } from './event-spill.ts';
import { MqttClient, type MqttClientEvents } from './mqtt/mqtt-client.ts';
import { StateStore } from './state-store.ts';
import { SyncEngine, syncModeContinuous, type SyncEvents } from './sync-engine.ts';

/** The hardware a device is made of. */
export interface DeviceHardware {
  network: Network;
  flash: Flash;
  clock: Clock;
  timers: Timers;
  random: Random;
  log: Log;
  /** CRC-32 over bytes (E.CRC32 on a board) and over a byte string (for template hashes). */
  crc32: Crc32;
  crc32OfText: (text: string) => number;
}

export interface DeviceOptions {
  stateTemplate: StateTemplate;
  /** Event templates the application emits (events-dropped is added). */
  templates: Template[];
  /** Event cache capacity and overflow policy (of the RAM ring and the flash tier alike). */
  cacheBytes: number;
  overflowPolicy: number;
  /**
   * The durable event cache (issue 9): a flash area of its own that the ring's events spill into
   * and that survives reboots; absent or null: events live in RAM only.
   */
  eventFlash?: Flash | null;
  /** An event waits at most this long in RAM before it is programmed (spillFlushDelayMs); 0: at once. */
  eventFlashFlushMs?: number;
  /** syncModeContinuous or syncModePeriodic, and the period. */
  syncMode: number;
  syncPeriodMs: number;
  /** How often the device does its due work. */
  tickMs: number;
  /** MQTT timing overrides (tests shorten them). */
  mqttBackoffMsMin?: number;
  mqttBackoffMsMax?: number;
  mqttKeepAliveSec?: number;
}

export function deviceDefaults(stateTemplate: StateTemplate, templates: Template[]): DeviceOptions {
  return {
    stateTemplate: stateTemplate,
    templates: templates,
    cacheBytes: eventCacheBytesMax,
    overflowPolicy: overflowDropOldest,
    syncMode: syncModeContinuous,
    syncPeriodMs: 60000,
    tickMs: 100,
  };
}

/** Application callbacks; every one is optional. */
export interface DeviceApp {
  onStateChanged?: (keyId: number) => void;
  onMessage?: (seq: number, body: string) => void;
  onSyncOutcome?: (ok: boolean) => void;
}

/**
 * Hands the MQTT client's events to the sync engine, which is made after the client (it needs the
 * client to publish): the one place that knot is tied.
 */
class MqttToSync implements MqttClientEvents {
  declare sync: SyncEngine | null;
  constructor() {
    this.sync = null;
  }
  onConnect(sessionPresent: boolean): void {
    if (this.sync !== null) this.sync.onConnect(sessionPresent);
  }
  onMessage(topic: string, bytes: Uint8Array, offset: number, length: number): void {
    if (this.sync !== null) this.sync.onMessage(topic, bytes, offset, length);
  }
  onPublishAcked(packetId: number): void {
    if (this.sync !== null) this.sync.onPublishAcked(packetId);
  }
  onSubscribeAcked(packetId: number, grantedQos: number): void {
    if (this.sync !== null) this.sync.onSubscribeAcked(packetId, grantedQos);
  }
  onDisconnect(code: number): void {
    if (this.sync !== null) this.sync.onDisconnect(code);
  }
}

export class Device implements SyncEvents {
  declare readonly state: StateStore;
  declare readonly cache: EventCache;
  /** The flash tier behind the cache (null: off). */
  declare readonly spill: EventSpill | null;
  declare readonly mqtt: MqttClient;
  declare readonly sync: SyncEngine;
  declare readonly epoch: number;
  declare readonly config: DeviceConfig;
  declare private readonly hardware: DeviceHardware;
  declare private readonly options: DeviceOptions;
  declare private readonly app: DeviceApp;
  declare private readonly droppedValues: WireValue[];
  declare private readonly tickBound: () => void;
  declare private timer: number;
  /** The events-dropped report waiting for its ack (0: none), and the drops it carries. */
  declare private reportSeq: number;
  declare private reportCount: number;
  declare private running: boolean;
  /** Failing sectors of the event flash already reported in the log. */
  declare private badSectorsLogged: number;
  /** When the RAM ring last went from empty to holding events (-1: empty), and how long they may stay. */
  declare private ringSinceMs: number;
  declare private readonly spillDelayMs: number;

  constructor(hardware: DeviceHardware, config: DeviceConfig, options: DeviceOptions, app: DeviceApp) {
    this.hardware = hardware;
    this.config = config;
    this.options = options;
    this.app = app;
    const template = options.stateTemplate;
    this.state = new StateStore(hardware.flash, template, { crc32: hardware.crc32, coalesceWindowMs: stateStoreCoalesceWindowMs, enforceOwnership: true });
    if (this.state.mount() !== 0) hardware.log.error('state: flash area failing; running on RAM values');
    // [SYNC-9] The boot epoch grows by one every boot and is stored before any event gets a seq.
    const epochKey = keyIdOf(template, '_bootEpoch');
    if (epochKey < 0) throw new Error('state template needs an int key _bootEpoch');
    const previous = this.state.getNumber(epochKey);
    let epoch = (previous === undefined ? 0 : previous) + 1;
    this.cache = new EventCache({ capacityBytes: options.cacheBytes, overflowPolicy: options.overflowPolicy, firstSeq: 1 });
    const templates = options.templates.slice();
    templates.push(eventsDroppedTemplate);
    this.spill = null;
    if (options.eventFlash) {
      // [CACHE-4] Mounted under this boot's epoch: what earlier boots left becomes the backlog.
      const spillOptions = eventSpillDefaults(hardware.crc32);
      spillOptions.overflowPolicy = options.overflowPolicy;
      if (options.eventFlashFlushMs !== undefined) spillOptions.flushDelayMs = options.eventFlashFlushMs;
      spillOptions.templatesCrc = eventTemplatesCrc(templates, hardware.crc32);
      const spill = createEventSpill(options.eventFlash, spillOptions);
      let found = spill.mount(epoch);
      // The state store lost its epoch (its area wiped or resized) but the event area names a
      // later one: reusing it would make the cloud take new events for replays of old ones.
      if (spill.highestEpochSeen() >= epoch) {
        hardware.log.warn('events: boot epoch ' + epoch + ' was used before; moving past ' + spill.highestEpochSeen());
        epoch = spill.highestEpochSeen() + 1;
        found = spill.mount(epoch);
      }
      if (found > 0) hardware.log.info('events: ' + found + ' unacknowledged events of earlier boots on flash');
      // [SPILL-7] Events a firmware with other templates cached cannot be sent as they were meant.
      if (spill.eventsForeign > 0) hardware.log.warn('events: ' + spill.eventsForeign + ' events on flash were cached under other event templates (a firmware update): dropped and reported');
      this.cache.attachSpillTier(spill);
      this.cache.collectSpillDrops();
      this.spill = spill;
    }
    this.epoch = epoch;
    this.state.setNumber(epochKey, epoch);
    // [SYNC-9] Local keys are never sent, so they count as acknowledged at once (nothing waits on
    // them). All of them, not only the epoch: a power cut between a local write and its ack (the
    // last applied message seq) would otherwise leave the key changed for good, and sync would
    // never see its work done.
    const fields = template.fields;
    for (let k = 0; k < fields.length; k++) if (fields[k].name.charAt(0) === '_' && this.state.isChanged(k)) this.state.ack(k, this.state.version(k));
    this.droppedValues = [0, 0, 0, 0];
    const forwarder = new MqttToSync();
    this.mqtt = new MqttClient(hardware.network, hardware.random, forwarder, {
      host: config.mqttHost,
      port: config.mqttPort,
      secure: config.tls,
      clientId: config.deviceId,
      username: config.deviceId,
      password: config.secret,
      presenceTopic: presenceTopic(config.deviceId),
      cleanSession: false,
      backoffMsMin: options.mqttBackoffMsMin,
      backoffMsMax: options.mqttBackoffMsMax,
      keepAliveSec: options.mqttKeepAliveSec,
    });
    this.sync = new SyncEngine(this.mqtt, this.cache, this.state, template, templates, hardware.clock, hardware.log, hardware.crc32, this, {
      deviceId: config.deviceId,
      epoch: this.epoch,
      stateTemplateHash: stateTemplateHash(template, hardware.crc32OfText),
      mode: options.syncMode,
      periodMs: options.syncPeriodMs,
      fillBytesTrigger: Math.floor(options.cacheBytes * 3 / 4),
      messageSeqKeyId: keyIdOf(template, '_messageSeq'),
    });
    forwarder.sync = this.sync;
    if (this.spill !== null) this.sync.attachBacklog(this.spill);
    this.running = false;
    this.timer = -1;
    this.reportSeq = 0;
    this.reportCount = 0;
    this.badSectorsLogged = 0;
    this.ringSinceMs = -1;
    this.spillDelayMs = options.eventFlashFlushMs !== undefined ? options.eventFlashFlushMs : spillFlushDelayMs;
    const self = this;
    this.tickBound = function () {
      self.timer = -1;
      self.tick();
    };
  }

  /** Starts syncing and the tick loop. */
  start(): void {
    this.running = true;
    this.sync.start(this.hardware.clock.nowMs());
    this.tick();
  }

  /** Stops the tick loop and disconnects (a clean shutdown; power loss needs no call). */
  stop(): void {
    this.running = false;
    if (this.timer >= 0) this.hardware.timers.clearTimeout(this.timer);
    this.timer = -1;
    this.mqtt.stop();
    this.persist();
  }

  /**
   * Puts on flash what waits in RAM: state changes in their coalescing window, and every cached
   * event when the flash tier is on. Before a planned reboot (E.on('kill')); power loss loses at
   * most what arrived since the last tick and the flush delay (firmware/DESIGN.md).
   */
  persist(): void {
    this.state.flush();
    if (this.spill !== null) {
      this.cache.spillNow(this.cache.count);
      this.spill.flush();
      this.cache.collectSpillDrops();
    }
  }

  /** [SYNC-30] Caches an event; see SyncEngine.emit. */
  emit(template: Template, values: ArrayLike<WireValue>): number {
    return this.sync.emit(template, values);
  }

  /** Does the due work of every part, then schedules the next tick. */
  tick(): void {
    const now = this.hardware.clock.nowMs();
    const spill = this.spill;
    if (spill !== null) {
      const cache = this.cache;
      if (cache.count === 0) this.ringSinceMs = -1;
      else if (this.ringSinceMs < 0) this.ringSinceMs = now;
      // Offline, every event goes to the tier at once, which programs its chunk once the oldest
      // has waited the flush delay. Online, the cloud usually acknowledges an event within a
      // round trip: events it has not acknowledged within the flush delay go to flash then, the
      // others never touch it (no wear while connected).
      const online = this.sync.status.sessionOpen;
      const spillDue = this.ringSinceMs >= 0 && (!online || now - this.ringSinceMs >= this.spillDelayMs);
      if (spillDue) cache.spillNow(cache.count);
      // Online, the events just spilled have already waited the delay: program them now.
      const result = spillDue && online ? spill.flush() : spill.tick(now);
      if (cache.count === 0) this.ringSinceMs = -1;
      // The tier refused events (they stay in the ring) or could not program its chunk: failing
      // sectors are skipped, and once none is left the events stay in RAM. Say so once.
      if (result === spillErrorFlash || (spillDue && cache.count > 0)) {
        const bad = spill.badSectorCount();
        if (bad > this.badSectorsLogged) this.hardware.log.error('events: ' + bad + ' of the flash area\'s sectors failing');
        this.badSectorsLogged = bad;
      }
      this.cache.collectSpillDrops();
    }
    this.reportDrops();
    this.mqtt.tick(now);
    this.sync.tick(now);
    this.state.tick(now);
    if (this.running && this.timer < 0) this.timer = this.hardware.timers.setTimeout(this.tickBound, this.options.tickMs);
  }

  /**
   * [CACHE-3] [SYNC-29] Dropped events become an events-dropped event of their own, so the loss
   * reaches the cloud. The report waits for room in the ring (it never evicts an event itself),
   * and its count is cleared only once the cloud acknowledged the report: a report evicted before
   * that (the ring overflowed again) leaves its count standing, to be reported again.
   */
  private reportDrops(): void {
    const cache = this.cache;
    if (this.reportSeq > 0) {
      if (this.sync.status.ackedSeq >= this.reportSeq) {
        cache.clearDropped(this.reportCount);
        this.reportSeq = 0;
      } else if (cache.totalCount() === 0 || cache.oldestSeq() > this.reportSeq) {
        this.reportSeq = 0; // evicted unacknowledged: its count is still in droppedCount
      } else {
        return; // one report in flight at a time
      }
    }
    const dropped = cache.droppedCount;
    if (dropped === 0) return;
    const values = this.droppedValues;
    values[0] = this.hardware.clock.epochMs();
    values[1] = dropped;
    // The first dropped seq is not tracked by the ring: 0 says unknown.
    values[2] = 0;
    values[3] = this.options.overflowPolicy === overflowDropOldest ? 'dropOldest' : 'rejectNewest';
    const seq = this.sync.emitIfRoom(eventsDroppedTemplate, values);
    if (seq > 0) {
      this.reportSeq = seq;
      this.reportCount = dropped;
    }
  }

  // SyncEvents: forwarded to the application.
  onStateChanged(keyId: number): void {
    if (this.app.onStateChanged) this.app.onStateChanged(keyId);
  }

  onMessage(seq: number, body: string): void {
    if (this.app.onMessage) this.app.onMessage(seq, body);
  }

  onSyncOutcome(ok: boolean): void {
    if (this.app.onSyncOutcome) this.app.onSyncOutcome(ok);
  }

  onCloudError(code: number, detail: string): void {
    this.hardware.log.warn('cloud error ' + code + ': ' + detail);
  }
}

/**
 * [SPILL-7] CRC-32 of the event templates' ids and hashes, in the given order: segments on flash
 * record it, so events cached under other templates are never sent under these.
 */
export function eventTemplatesCrc(templates: Template[], crc32: Crc32): number {
  const bytes = new Uint8Array(templates.length * 5);
  for (let i = 0; i < templates.length; i++) {
    bytes[i * 5] = templates[i].id;
    putU32(bytes, i * 5 + 1, templates[i].hash);
  }
  return crc32(bytes, 0, bytes.length) >>> 0;
}
