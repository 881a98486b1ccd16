// One simulated device for the fleet simulation: a device core on a FlashSimulator that survives
// power cuts and reboots (a new Device on the same flash), with a network that can die with it and
// duplicate whole MQTT PUBLISH packets, a clock that can jump, and a ledger of every event the
// cache accepted, evicted, refused and had acknowledged, per boot epoch, for the invariants.
import { connect as netConnect, type Socket as NodeSocket } from 'node:net';
import { Device, deviceDefaults, type DeviceOptions } from '../../firmware/core/device.ts';
import type { EventCache } from '../../firmware/core/event-cache.ts';
import type { EventSpill } from '../../firmware/core/event-spill.ts';
import type { Network, Socket, SocketHandlers } from '../../firmware/hal/socket.ts';
import { crc32, crc32OfByteString } from '../../firmware/protocol/crc32.ts';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { eventsDroppedTemplate } from '../../firmware/protocol/templates/events-dropped.ts';
import { telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { FlashSimulator, PowerLoss, seededRandom } from '../../hal-mocks/flash-simulator.ts';

/** What became of one event the cache accepted. */
export interface EventEntry {
  /** Template id byte (telemetry or events-dropped). */
  templateId: number;
  /** Telemetry: the values emitted. Reports: the drop count the report carries. */
  values: number[] | null;
  reportCount: number;
  acked: boolean;
  /** Acknowledged after its boot died, from the next boots' flash tier backlog [SYNC-33]. */
  ackedLater: boolean;
  evicted: boolean;
  /** Dropped from the flash tier by a later boot whose area was full (counted in that boot's drops). */
  droppedLater: boolean;
}

/** One boot of one device: the events of its epoch and how the boot ended. */
export interface EpochLedger {
  epoch: number;
  events: Map<number, EventEntry>;
  /** Appends the cache refused (reject-newest, too large): drops that accepted nothing. */
  refused: number;
  /**
   * Set when the boot ended by power loss or reset: seqs still in RAM then (the ring, and the
   * flash tier's chunk buffer when it is on), and drops not yet reported.
   */
  cut: { fromSeq: number; toSeq: number; droppedPending: number; reason: string } | null;
  /** Events this boot had on flash, unacknowledged, when it died: they must arrive after the reboot. */
  onFlashAtCut: number;
  /** Events of earlier boots this boot's flash tier dropped (area full): its drop reports cover them. */
  earlierDrops: number;
  /** Drops not yet reported when the run ended (alive boots only). */
  droppedPendingAtEnd: number;
}

export interface SimDeviceOptions {
  config: DeviceConfig;
  seed: number;
  cacheBytes: number;
  overflowPolicy: number;
  /**
   * The durable event cache: flush delay of its chunk buffer in ms (0: write-through), or -1 for
   * events in RAM only. Its area is on a flash of its own that shares the power.
   */
  eventFlashFlushMs: number;
  /** Sectors of 4 KiB in that area (32: the default 128 KiB). */
  eventFlashSectors: number;
  /** Called with every violation the device itself notices (a throw that is not a power loss). */
  onViolation: (message: string) => void;
  /** Called once per boot that dies (power loss, reset, crash); the simulation schedules the reboot. */
  onDeath: () => void;
}

/** Byte length of a whole MQTT packet starting at data[offset], or -1 when it is not one whole packet. */
function wholePacketLength(data: Uint8Array, offset: number, length: number): number {
  let multiplier = 1;
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    if (offset + i >= offset + length) return -1;
    const byte = data[offset + i]!;
    remaining += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) return 1 + i + remaining;
  }
  return -1;
}

/** The parts of one boot that must die with it: timers and sockets. */
class Boot {
  /** Boots not yet killed, over every SimDevice of the process (a run must leave none). */
  static live = 0;
  dead = false;
  readonly timers = new Set<NodeJS.Timeout>();
  readonly sockets = new Set<NodeSocket>();
  device: Device | null = null;
  /** Message seq the app applied inside the current guarded call (see SimDevice.guard). */
  appliedInCall: number[] = [];

  constructor() {
    Boot.live++;
  }

  kill(): void {
    if (!this.dead) Boot.live--;
    this.dead = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // A dying board sends no FIN: the connection just goes away.
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }
}

/** Boots still running in this process: 0 once every run has ended (nothing left ticking). */
export function liveBoots(): number {
  return Boot.live;
}

export class SimDevice {
  readonly deviceId: string;
  readonly flash: FlashSimulator;
  /** The durable event cache's area (null: off). */
  readonly eventFlash: FlashSimulator | null;
  readonly ledgers: EpochLedger[] = [];
  /** Cloud-to-device messages the application applied, by seq: how many times. */
  readonly applied = new Map<number, number>();
  /** Messages applied again because power failed before their seq was persisted: how many times (each allowed). */
  readonly reappliedAfterCut = new Map<number, number>();
  /** Message seqs the application never got because a later one was applied first (a gap). */
  readonly skippedByGap = new Set<number>();
  private maxApplied = 0;
  /** Message seqs applied inside a call that power loss interrupted. */
  private readonly appliedBeforeCut = new Set<number>();
  readonly rpcResults = new Map<number, number[]>();
  /** Whole PUBLISH packets written twice on purpose. */
  duplicatedPublishes = 0;
  dupChance = 0;
  epochOffsetMs = 0;
  nowSkipMs = 0;
  boots = 0;
  powerCuts = 0;
  /** HELLO publishes the MQTT client refused (window full): the session cannot open until a reconnect. */
  helloRefused = 0;
  /** Sync messages the MQTT client refused, by message type (the engine does not retry some). */
  readonly refusedByType = new Map<number, number>();
  /** The device's last log lines, and the simulation's notes on it (for failure reports). */
  readonly trace: string[] = [];
  private boot: Boot | null = null;
  private readonly random: () => number;
  private readonly started = performance.now();
  private readonly options: SimDeviceOptions;
  private readonly deviceOptions: DeviceOptions;

  constructor(options: SimDeviceOptions) {
    this.options = options;
    this.deviceId = options.config.deviceId;
    this.random = seededRandom(options.seed);
    this.flash = new FlashSimulator({ sectorCount: 4, seed: options.seed });
    this.eventFlash = options.eventFlashFlushMs >= 0 ? new FlashSimulator({ sectorCount: options.eventFlashSectors, seed: options.seed + 1 }) : null;
    this.deviceOptions = {
      ...deviceDefaults(demoStateTemplate, [telemetryTemplate]),
      cacheBytes: options.cacheBytes,
      overflowPolicy: options.overflowPolicy,
      tickMs: 10,
      mqttBackoffMsMin: 20,
      mqttBackoffMsMax: 120,
      mqttKeepAliveSec: 2,
      eventFlash: this.eventFlash,
      eventFlashFlushMs: options.eventFlashFlushMs >= 0 ? options.eventFlashFlushMs : undefined,
    };
  }

  get device(): Device | null {
    return this.boot !== null && !this.boot.dead ? this.boot.device : null;
  }

  get alive(): boolean {
    return this.device !== null;
  }

  get currentLedger(): EpochLedger | null {
    const device = this.device;
    if (device === null) return null;
    const last = this.ledgers[this.ledgers.length - 1];
    return last !== undefined && last.epoch === device.epoch ? last : null;
  }

  /** Boots (or reboots) the device on its flash. Returns false when power failed during boot. */
  powerOn(): boolean {
    this.flash.restorePower();
    this.eventFlash?.restorePower();
    const boot = new Boot();
    this.boot = boot;
    this.boots++;
    let ok = false;
    this.guard(boot, () => {
      const device = this.createDevice(boot);
      boot.device = device;
      this.note('boot ' + this.boots + ', epoch ' + device.epoch);
      this.instrument(device.cache, device.epoch, device.spill);
      const publish = device.mqtt.publish.bind(device.mqtt);
      device.mqtt.publish = (topic: string, payload: string | Uint8Array, qos: number, retain: boolean): number => {
        const code = publish(topic, payload, qos, retain);
        const type = typeof payload === 'string' ? payload.charCodeAt(0) : payload[0];
        if (code < 0) {
          if (type === 0x01) this.helloRefused++;
          if (type !== undefined) this.refusedByType.set(type, (this.refusedByType.get(type) ?? 0) + 1);
          this.note('sync message type ' + type + ' refused by the MQTT client: ' + code + ', in flight ' + device.mqtt.inFlight());
        }
        return code;
      };
      device.start();
      ok = true;
    });
    return ok && !boot.dead;
  }

  /** Power is cut now, whatever the device is doing (a reset or brown-out with no flash op). */
  resetNow(reason: string): void {
    const boot = this.boot;
    if (boot === null || boot.dead) return;
    this.die(boot, reason);
  }

  /** A clean stop at the end of a run (not a fault). */
  stop(): void {
    const boot = this.boot;
    if (boot === null || boot.dead) return;
    this.guard(boot, () => boot.device?.stop());
    boot.kill();
  }

  /** Runs `body` as device code: a power loss kills the boot; any other throw is a violation. */
  run(body: (device: Device) => void): void {
    const boot = this.boot;
    if (boot === null || boot.dead || boot.device === null) return;
    const device = boot.device;
    this.guard(boot, () => body(device));
  }

  /** Notes the drops still pending on the live boot (called once the run is over). */
  closeLedger(): void {
    const ledger = this.currentLedger;
    const device = this.device;
    if (ledger !== null && device !== null) ledger.droppedPendingAtEnd = device.cache.droppedCount;
  }

  /** Cloud errors "no session" (5) received since the device's session last opened. */
  noSessionErrorsInSession = 0;

  /** Adds a line to the device's trace (bounded). */
  note(line: string): void {
    if (line.startsWith('sync: session open')) this.noSessionErrorsInSession = 0;
    if (line.startsWith('sync: cloud error 5:')) this.noSessionErrorsInSession++;
    this.trace.push(`${Math.round(performance.now() - this.started)}ms ${line}`);
    if (this.trace.length > 60) this.trace.splice(0, 30);
  }

  private guard(boot: Boot, body: () => void): void {
    if (boot.dead) return;
    boot.appliedInCall = [];
    try {
      body();
    } catch (error) {
      if (error instanceof PowerLoss) {
        for (const seq of boot.appliedInCall) this.appliedBeforeCut.add(seq);
        this.die(boot, 'power loss at flash operation ' + error.operation);
        return;
      }
      this.options.onViolation(`device ${this.deviceId} threw: ${(error as Error).stack ?? String(error)}`);
      this.die(boot, 'crash');
    }
  }

  private die(boot: Boot, reason: string): void {
    if (boot.dead) return;
    const device = boot.device;
    const ledger = this.currentLedger;
    if (device !== null && ledger !== null) {
      const cache = device.cache;
      // RAM holds the ring and, ahead of it, the tier's chunk buffer (the newest spilled events).
      const pending = device.spill !== null ? device.spill.pendingCount() : 0;
      const head = cache.nextSeq - cache.count - pending;
      // Drops counted by the tier and not yet collected by the cache die with the RAM too (the
      // boot is over: collecting them here only moves them into the count read below).
      cache.collectSpillDrops();
      ledger.cut = { fromSeq: head, toSeq: cache.nextSeq - 1, droppedPending: cache.droppedCount, reason };
      ledger.onFlashAtCut = cache.totalCount() - cache.count - pending;
    }
    this.powerCuts++;
    this.note('died: ' + reason);
    boot.kill();
    this.options.onDeath();
  }

  private createDevice(boot: Boot): Device {
    const self = this;
    const deviceRandom = seededRandom(this.options.seed * 31 + this.boots);
    return new Device(
      {
        network: this.network(boot),
        flash: this.flash,
        clock: {
          nowMs: () => performance.now() - self.started + self.nowSkipMs,
          epochMs: () => Date.now() + self.epochOffsetMs,
        },
        timers: {
          setTimeout: (callback, delayMs) => {
            const timer: NodeJS.Timeout = setTimeout(() => {
              boot.timers.delete(timer);
              self.guard(boot, callback);
            }, delayMs);
            boot.timers.add(timer);
            return timer as unknown as number;
          },
          clearTimeout: (handle) => {
            const timer = handle as unknown as NodeJS.Timeout;
            boot.timers.delete(timer);
            clearTimeout(timer);
          },
        },
        random: { nextUint32: () => Math.floor(deviceRandom() * 4294967296) },
        log: { info: (m) => self.note(m), warn: (m) => self.note(m), error: (m) => self.note(m) },
        crc32,
        crc32OfText: crc32OfByteString,
      },
      this.options.config,
      this.deviceOptions,
      {
        onMessage: (seq) => {
          self.note('applied message ' + seq + (seq > self.maxApplied + 1 ? ' after ' + self.maxApplied + ' (a gap)' : ''));
          for (let skipped = self.maxApplied + 1; skipped < seq; skipped++) if (!self.applied.has(skipped)) self.skippedByGap.add(skipped);
          if (seq > self.maxApplied) self.maxApplied = seq;
          boot.appliedInCall.push(seq);
          const times = (self.applied.get(seq) ?? 0) + 1;
          self.applied.set(seq, times);
          if (times > 1 && self.appliedBeforeCut.has(seq)) {
            self.appliedBeforeCut.delete(seq);
            self.reappliedAfterCut.set(seq, (self.reappliedAfterCut.get(seq) ?? 0) + 1);
          }
        },
      },
    );
  }

  /** Watches the cache: which seqs were accepted, evicted by overflow, refused and acknowledged. */
  private instrument(cache: EventCache, epoch: number, spill: EventSpill | null): void {
    const ledger: EpochLedger = { epoch, events: new Map(), refused: 0, cut: null, onFlashAtCut: 0, earlierDrops: 0, droppedPendingAtEnd: 0 };
    this.ledgers.push(ledger);
    const append = cache.append.bind(cache);
    const ack = cache.ack.bind(cache);
    cache.append = (data: Uint8Array, offset: number, length: number): number => {
      // The oldest event held in either tier: events below it left by overflow (the tier's own
      // drop-oldest included), never by spilling from the ring to flash.
      const headBefore = cache.nextSeq - cache.totalCount();
      const droppedBefore = cache.droppedCount;
      const seq = append(data, offset, length);
      const headAfter = cache.nextSeq - cache.totalCount();
      for (let s = headBefore; s < headAfter; s++) {
        const entry = ledger.events.get(s);
        if (entry !== undefined) entry.evicted = true;
      }
      if (seq > 0) {
        const templateId = data[offset]!;
        ledger.events.set(seq, { templateId, values: null, reportCount: templateId === eventsDroppedTemplate.id ? droppedBefore : 0, acked: false, ackedLater: false, evicted: false, droppedLater: false });
      } else {
        ledger.refused++;
      }
      return seq;
    };
    cache.ack = (seq: number): number => {
      const headBefore = cache.nextSeq - cache.totalCount();
      const purged = ack(seq);
      const headAfter = cache.nextSeq - cache.totalCount();
      for (let s = headBefore; s < headAfter; s++) {
        const entry = ledger.events.get(s);
        if (entry !== undefined) entry.acked = true;
      }
      return purged;
    };
    // The tier's drop-oldest when its area is full, at whatever call it happens: which events of
    // which boot went. (Private members, reached the way the cache's methods are wrapped above.)
    if (spill !== null) {
      const tier = spill as unknown as {
        dropOldestSegment(): void; firstUnackedIn(sector: number): number;
        order: Uint8Array; epochOf: Uint32Array; first: Uint32Array; stored: Uint32Array;
      };
      const dropOldestSegment = tier.dropOldestSegment.bind(spill);
      tier.dropOldestSegment = (): void => {
        const sector = tier.order[0]!;
        const owner = this.ledgers.find((l) => l.epoch === tier.epochOf[sector]);
        const from = tier.firstUnackedIn(sector);
        const to = tier.first[sector]! + tier.stored[sector]! - 1;
        for (let s = from; s <= to && owner !== undefined; s++) {
          const entry = owner.events.get(s);
          if (entry === undefined) continue;
          if (owner === ledger) {
            entry.evicted = true;
          } else {
            entry.droppedLater = true;
            ledger.earlierDrops++;
          }
        }
        dropOldestSegment();
      };
    }
    // [SYNC-33] Acks of earlier boots' events, applied to the flash tier's backlog.
    if (spill !== null) {
      const ackBacklog = spill.ackBacklog.bind(spill);
      spill.ackBacklog = (ackedEpoch: number, seq: number): number => {
        const earlier = this.ledgers.find((l) => l.epoch === ackedEpoch);
        if (earlier !== undefined) for (const [s, entry] of earlier.events) if (s <= seq && !entry.evicted) entry.ackedLater = true;
        return ackBacklog(ackedEpoch, seq);
      };
    }
  }

  /** Real TCP, chunked as an ESP32 delivers; dies with the boot; may send a whole PUBLISH twice. */
  private network(boot: Boot): Network {
    const self = this;
    return {
      connect(host: string, port: number, _secure: boolean, handlers: SocketHandlers): Socket {
        const socket = netConnect({ host, port });
        socket.setNoDelay(true);
        boot.sockets.add(socket);
        let closed = false;
        const finish = (hadError: boolean): void => {
          if (closed) return;
          closed = true;
          boot.sockets.delete(socket);
          self.guard(boot, () => handlers.onClose(hadError));
        };
        socket.on('connect', () => self.guard(boot, () => handlers.onConnect()));
        socket.on('data', (data: Buffer) => {
          for (let offset = 0; offset < data.length && !closed && !boot.dead; offset += 536) {
            const piece = data.subarray(offset, Math.min(offset + 536, data.length)).toString('latin1');
            self.guard(boot, () => handlers.onData(piece));
          }
        });
        socket.on('error', () => finish(true));
        socket.on('close', (hadError: boolean) => finish(hadError));
        return {
          write(data: Uint8Array, offset: number, length: number): boolean {
            if (closed || boot.dead || socket.destroyed) return false;
            const bytes = Buffer.from(data.subarray(offset, offset + length));
            socket.write(bytes);
            // [fault] a duplicated packet: the same whole QoS 1 PUBLISH again, as a retransmit
            // that crossed its PUBACK would look to the broker.
            if ((bytes[0]! & 0xf0) === 0x30 && wholePacketLength(bytes, 0, bytes.length) === bytes.length && self.dupChance > 0 && self.random() < self.dupChance) {
              socket.write(bytes);
              self.duplicatedPublishes++;
            }
            return true;
          },
          close(): void {
            if (closed) return;
            socket.end(() => socket.destroy());
          },
        };
      },
    };
  }
}
