// bench cloud: the cloud stub under fleet load, over real MQTT on loopback. The cloud runs in a
// child process (so its resident memory is its own); simulated devices are raw-TCP MQTT clients in
// this process speaking the real sync protocol (HELLO, then EVENTS frames from the codec's encoder,
// each acknowledged by EVENTS_ACK only after the durable SQLite commit). Figures: ingest rate of
// 200 devices × 50-event batches (embedded broker, then Mosquitto), publish-to-ack latency at a fixed
// 50,000 events/s, and resident memory per idle device connection.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from '../firmware/protocol/crc32.ts';
import { syncEvents, syncEventsAck, syncHello, syncProtocolVersion, syncWelcome, writeShortString, writeSyncVarint, writeU32 } from '../firmware/protocol/sync-messages.ts';
import { demoStateTemplate } from '../firmware/protocol/templates/demo-state.ts';
import { telemetryTemplate } from '../firmware/protocol/templates/index.ts';
import { encodeRecordsToFrames } from '../firmware/protocol/wire-objects.ts';
import { printTable, type Benchmark } from './results.ts';

export const summary = 'Cloud ingest (200 devices × 50-event batches, embedded broker and Mosquitto), latency at 50k events/s, memory per idle connection';

const childFlag = 'TANDEM_BENCH_CLOUD_CHILD';
const batchEvents = 50;
const epoch = 1;

// ---------------------------------------------------------------------------------------------
// The cloud child: starts the cloud on a fresh SQLite file with the bench devices registered in
// one transaction (provisioning 10,000 devices one fsync at a time would dominate the run).

type ChildRequest =
  | { cmd: 'start'; dataDir: string; deviceIds: string[]; secretHash: string; mqttUrl?: string; shareGroup?: string }
  | { cmd: 'stats' }
  | { cmd: 'stop' };

interface ChildStats {
  rssBytes: number;
  heapUsedBytes: number;
  /** CPU time of the cloud process (user + system), so the cost per event can be told apart from
   * how much of the shared machine the process got. */
  cpuSeconds: number;
  events: number;
  commits: number;
  commitSecondsTotal: number;
  commitSecondsMax: number;
  overloaded: number;
  dropped: number;
  connected: number;
}

async function runChild(): Promise<void> {
  const { SqliteRepository } = await import('../cloud-stub/storage/sqlite-repository.ts');
  const { startCloud } = await import('../cloud-stub/server.ts');
  const Database = (await import('better-sqlite3')).default;
  let cloud: Awaited<ReturnType<typeof startCloud>> | null = null;
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (raw) => {
    const request = raw as ChildRequest;
    void (async () => {
      if (request.cmd === 'start') {
        const path = join(request.dataDir, 'tandem.sqlite');
        const repository = new SqliteRepository({ path });
        const db = new Database(path);
        const insert = db.prepare('INSERT INTO devices (device_id, secret_hash, created_at_ms) VALUES (?, ?, ?)');
        db.transaction(() => {
          for (const id of request.deviceIds) insert.run(id, request.secretHash, Date.now());
        })();
        db.close();
        cloud = await startCloud({
          dataDir: request.dataDir, repository, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1',
          mqttUrl: request.mqttUrl, shareGroup: request.shareGroup, log: process.env.BENCH_DEBUG ? (line) => console.error(line) : () => {}, adminToken: 'bench',
        });
        process.send!({ ready: true, mqttPort: cloud.mqttPort });
      } else if (request.cmd === 'stats') {
        gc?.();
        const m = cloud!.context.metrics;
        const stats: ChildStats = {
          rssBytes: process.memoryUsage.rss(),
          heapUsedBytes: process.memoryUsage().heapUsed,
          cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
          events: m.get('tandem_ingest_events_total'),
          commits: m.get('tandem_ingest_commits_total'),
          commitSecondsTotal: m.get('tandem_ingest_commit_seconds_total'),
          commitSecondsMax: m.get('tandem_ingest_commit_seconds_max'),
          overloaded: m.get('tandem_ingest_overloaded_total'),
          dropped: m.get('tandem_uplink_dropped_total'),
          connected: m.get('tandem_mqtt_connected_devices'),
        };
        process.send!(stats);
      } else {
        await cloud?.stop();
        process.send!({ stopped: true });
        process.exit(0);
      }
    })().catch((error: Error) => {
      process.send!({ error: error.message });
    });
  });
}

class CloudChild {
  private readonly child: ChildProcess;
  private readonly waiting: Array<(message: Record<string, unknown>) => void> = [];

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [childFlag]: '1' },
      // BENCH_CPU_PROF_DIR=dir writes a V8 CPU profile of each cloud child (to find the hot path).
      execArgv: ['--import', 'tsx', '--expose-gc', ...(process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message) => this.waiting.shift()?.(message as Record<string, unknown>));
  }

  get pid(): number {
    return this.child.pid!;
  }

  request(message: ChildRequest, timeoutMs = 120_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`cloud child did not answer ${message.cmd}`)), timeoutMs);
      this.waiting.push((answer) => {
        clearTimeout(timer);
        if (typeof answer.error === 'string') reject(new Error(`cloud child: ${answer.error}`));
        else resolve(answer);
      });
      this.child.send(message);
    });
  }

  async stats(): Promise<ChildStats> {
    return (await this.request({ cmd: 'stats' })) as unknown as ChildStats;
  }

  async stop(): Promise<void> {
    await this.request({ cmd: 'stop' }, 20_000).catch(() => this.child.kill('SIGKILL'));
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal MQTT 3.1.1 client over a raw socket: CONNECT, SUBSCRIBE, QoS 1 PUBLISH, PUBACK of
// downlinks. Light enough that 10,000 of them fit in this process beside the load generator.

function remainingLength(length: number): number[] {
  const out: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    out.push(byte);
  } while (length > 0);
  return out;
}

function mqttString(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function packet(firstByte: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([firstByte, ...remainingLength(body.length)]), body]);
}

class RawDevice {
  private readonly socket: Socket;
  private pending: Buffer = Buffer.alloc(0);
  private packetId = 0;
  private readonly waiters: Array<{ type: number; resolve: () => void }> = [];
  onDownlink: (payload: Buffer) => void = () => {};
  readonly closed: Promise<void>;

  constructor(
    readonly deviceId: string,
    port: number,
  ) {
    this.socket = connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('error', () => {});
  }

  private nextId(): number {
    this.packetId = (this.packetId % 65535) + 1;
    return this.packetId;
  }

  private expect(type: number): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ type, resolve }));
  }

  async connect(secret: string): Promise<void> {
    const flags = 0x80 | 0x40 | 0x02;
    const body = Buffer.concat([mqttString('MQTT'), Buffer.from([4, flags, 0, 0]), mqttString(this.deviceId), mqttString(this.deviceId), mqttString(secret)]);
    const connack = this.expect(2);
    this.socket.write(packet(0x10, body));
    await connack;
    const suback = this.expect(9);
    const id = this.nextId();
    this.socket.write(packet(0x82, Buffer.concat([Buffer.from([id >> 8, id & 255]), mqttString(`t/${this.deviceId}/d`), Buffer.from([1])])));
    await suback;
  }

  publish(payload: Uint8Array): void {
    const id = this.nextId();
    this.socket.write(packet(0x32, Buffer.concat([mqttString(`t/${this.deviceId}/u`), Buffer.from([id >> 8, id & 255]), payload])));
  }

  private read(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.pending.length < 2) return;
      let length = 0;
      let multiplier = 1;
      let at = 1;
      let byte: number;
      do {
        if (at >= this.pending.length) return;
        byte = this.pending[at++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
      } while ((byte & 0x80) !== 0);
      if (this.pending.length < at + length) return;
      const first = this.pending[0]!;
      const body = this.pending.subarray(at, at + length);
      this.pending = this.pending.subarray(at + length);
      const type = first >> 4;
      if (type === 3) {
        const qos = (first >> 1) & 3;
        const topicLength = body.readUInt16BE(0);
        let offset = 2 + topicLength;
        if (qos > 0) {
          const id = body.readUInt16BE(offset);
          offset += 2;
          this.socket.write(Buffer.from([0x40, 2, id >> 8, id & 255]));
        }
        this.onDownlink(body.subarray(offset));
      } else {
        const index = this.waiters.findIndex((waiter) => waiter.type === type);
        if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve();
      }
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The sync protocol on top: HELLO, then EVENTS batches; EVENTS_ACK carries the committed seq.

function helloPayload(): Uint8Array {
  const { stateTemplateHash } = stateHashes;
  const out = new Uint8Array(64);
  out[0] = syncHello;
  out[1] = syncProtocolVersion;
  let at = writeSyncVarint(out, 2, out.length, epoch);
  at = writeSyncVarint(out, at, out.length, 0);
  at = writeU32(out, at, stateTemplateHash);
  out[at++] = 1;
  at = writeU32(out, at, telemetryTemplate.hash);
  out[at++] = 0;
  at = writeShortString(out, at, out.length, 'bench');
  return out.subarray(0, at);
}

const stateHashes = { stateTemplateHash: 0 };

/** EVENTS of batch k (seqs k*50+1 ..), the frame encoded once and shared by every device. */
function eventsPayloads(batches: number): Uint8Array[] {
  const t0 = Date.UTC(2026, 0, 1);
  const payloads: Uint8Array[] = [];
  for (let k = 0; k < batches; k++) {
    const firstSeq = k * batchEvents + 1;
    const records = Array.from({ length: batchEvents }, (_, i) => ({ ts: t0 + (firstSeq + i) * 1000, temp: 20 + ((firstSeq + i) % 50) / 10, hum: 40 + (i % 20), batt: 3700 - (i % 30) }));
    const encoded = encodeRecordsToFrames(telemetryTemplate, records, { firstSeq, crc: crc32 });
    if (!encoded.ok) throw new Error(`frame encoding failed: ${encoded.error.message}`);
    if (encoded.frames.length !== 1) throw new Error(`${batchEvents} events took ${encoded.frames.length} frames`);
    const frame = encoded.frames[0]!;
    const header = new Uint8Array(16);
    header[0] = syncEvents;
    let at = writeSyncVarint(header, 1, header.length, epoch);
    at = writeSyncVarint(header, at, header.length, firstSeq);
    // [SYNC-2] Each frame of an EVENTS message sits behind its u16 little-endian length.
    const out = new Uint8Array(at + 2 + frame.length);
    out.set(header.subarray(0, at), 0);
    out[at] = frame.length & 0xff;
    out[at + 1] = frame.length >> 8;
    out.set(frame, at + 2);
    payloads.push(out);
  }
  return payloads;
}

/** Reads EVENTS_ACK: [0x82, varint epoch, varint committedSeq]; -1 for other messages. */
function ackedSeq(payload: Buffer): number {
  if (payload[0] !== syncEventsAck) return -1;
  let at = 1;
  const readVarint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = payload[at++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
  };
  readVarint();
  return readVarint();
}

interface FleetDevice {
  raw: RawDevice;
  nextBatch: number;
  ackedSeq: number;
  sentAt: Map<number, number>;
  onAck: (() => void) | null;
}

async function openFleet(ids: string[], port: number, secret: string): Promise<FleetDevice[]> {
  const fleet: FleetDevice[] = [];
  const welcome = syncWelcome;
  await Promise.all(
    ids.map(async (id) => {
      const raw = new RawDevice(id, port);
      const device: FleetDevice = { raw, nextBatch: 0, ackedSeq: 0, sentAt: new Map(), onAck: null };
      let welcomed: () => void = () => {};
      const gotWelcome = new Promise<void>((resolve) => (welcomed = resolve));
      raw.onDownlink = (payload) => {
        if (payload[0] === welcome) welcomed();
        const seq = ackedSeq(payload);
        if (seq > device.ackedSeq) {
          device.ackedSeq = seq;
          device.onAck?.();
        }
      };
      await raw.connect(secret);
      raw.publish(helloPayload());
      await gotWelcome;
      fleet.push(device);
    }),
  );
  return fleet;
}

function send(device: FleetDevice, payloads: Uint8Array[]): number {
  const k = device.nextBatch++;
  const payload = payloads[k]!;
  // The oldest seq the device still holds: the first unacknowledged one.
  const oldest = device.ackedSeq + 1;
  const at = writeSyncVarint(payload, 1, payload.length, epoch);
  writeSyncVarint(payload, at, payload.length, oldest);
  device.raw.publish(payload);
  return k;
}

/** Every device sends `batches` batches with `window` unacknowledged at most; resolves when all are acked. */
async function blast(fleet: FleetDevice[], payloads: Uint8Array[], batches: number, window: number): Promise<number> {
  const started = performance.now();
  await Promise.all(
    fleet.map(
      (device) =>
        new Promise<void>((resolve) => {
          const last = device.nextBatch + batches;
          const targetSeq = last * batchEvents;
          const pump = (): void => {
            while (device.nextBatch < last && device.nextBatch * batchEvents - device.ackedSeq < window * batchEvents) send(device, payloads);
            if (device.ackedSeq >= targetSeq) {
              device.onAck = null;
              resolve();
            }
          };
          device.onAck = pump;
          pump();
        }),
    ),
  );
  return (performance.now() - started) / 1000;
}

/**
 * Paced load: every device sends one batch per period, as a device does, one in flight: a device
 * whose previous batch is not acknowledged by its next turn skips that turn (counted), so an
 * overloaded cloud shows as a lower achieved rate and long latencies, never as a pile of unsent work.
 */
async function paced(fleet: FleetDevice[], payloads: Uint8Array[], eventsPerSec: number, seconds: number): Promise<{ latencies: number[]; achieved: number; skipped: number }> {
  const periodMs = (fleet.length * batchEvents * 1000) / eventsPerSec;
  const latencies: number[] = [];
  let acked = 0;
  let skipped = 0;
  const timers: NodeJS.Timeout[] = [];
  const started = performance.now();
  for (const [index, device] of fleet.entries()) {
    device.onAck = () => {
      const now = performance.now();
      for (const [k, sentAt] of device.sentAt) {
        if ((k + 1) * batchEvents <= device.ackedSeq) {
          latencies.push(now - sentAt);
          acked += batchEvents;
          device.sentAt.delete(k);
        }
      }
    };
    // Staggered, so the fleet's publishes spread over the period instead of arriving in bursts.
    const startTimer = setTimeout(() => {
      const tick = (): void => {
        if (device.nextBatch >= payloads.length) return;
        if (device.sentAt.size > 0) {
          skipped++;
          return;
        }
        const k = send(device, payloads);
        device.sentAt.set(k, performance.now());
      };
      tick();
      timers.push(setInterval(tick, periodMs));
    }, (index * periodMs) / fleet.length);
    timers.push(startTimer);
  }
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  for (const timer of timers) clearInterval(timer);
  const elapsed = (performance.now() - started) / 1000;
  // Let the last acks arrive (they count toward latency, not toward the achieved rate).
  const deadline = performance.now() + 5000;
  while (fleet.some((d) => d.sentAt.size > 0) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  for (const device of fleet) device.onAck = null;
  return { latencies, achieved: acked / elapsed, skipped };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function connectIdle(ids: string[], port: number, secret: string, concurrency: number): Promise<RawDevice[]> {
  const devices: RawDevice[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const device = new RawDevice(id, port);
        await device.connect(secret);
        devices.push(device);
      }
    }),
  );
  return devices;
}

// ---------------------------------------------------------------------------------------------

async function withCloud<T>(deviceIds: string[], secretHash: string, options: { mqttUrl?: string; shareGroup?: string }, body: (child: CloudChild, port: number) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-bench-cloud-'));
  const child = new CloudChild();
  try {
    const ready = await child.request({ cmd: 'start', dataDir, deviceIds, secretHash, ...options });
    const port = options.mqttUrl === undefined ? (ready.mqttPort as number) : Number(new URL(options.mqttUrl).port || 1883);
    return await body(child, port);
  } finally {
    await child.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export const run: Benchmark['run'] = async ({ quick }) => {
  const { stateTemplateHashOf } = await import('../cloud-stub/sync-session.ts');
  const { hashSecret } = await import('../cloud-stub/identity.ts');
  stateHashes.stateTemplateHash = stateTemplateHashOf(demoStateTemplate);
  const deviceCount = 200;
  const blastBatches = quick ? 4 : 40;
  const pacedSeconds = quick ? 2 : 8;
  const pacedRate = 50_000;
  const idleCount = quick ? 1000 : 10_000;
  // A device keeps one EVENTS message in flight and waits for its acknowledgement.
  const window = 1;
  const runId = randomBytes(3).toString('hex');
  const ids = Array.from({ length: deviceCount }, (_, i) => `bench-${runId}-${i}`);
  const secret = randomBytes(16).toString('base64url');
  // A low scrypt cost keeps setup short; it changes connect CPU, not throughput or memory.
  const secretHash = await hashSecret(secret, 16);
  const payloads = eventsPayloads(blastBatches + Math.ceil((pacedSeconds * pacedRate) / (deviceCount * batchEvents)) + 8);
  const mosquittoUrl = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';

  console.log(`cloud bench: ${deviceCount} devices × ${blastBatches} batches of ${batchEvents} events, embedded broker + SQLite, acknowledged after the WAL is on disk ...`);
  const embedded = await withCloud(ids, secretHash, {}, async (child, port) => {
    const fleet = await openFleet(ids, port, secret);
    const before = await child.stats();
    const seconds = await blast(fleet, payloads, blastBatches, window);
    const after = await child.stats();
    const events = deviceCount * blastBatches * batchEvents;
    if (after.events - before.events !== events) throw new Error(`cloud committed ${after.events - before.events} events, expected ${events}`);
    console.log(`cloud bench: latency at a fixed ${pacedRate} events/s for ${pacedSeconds} s ...`);
    const latency = await paced(fleet, payloads, pacedRate, pacedSeconds);
    for (const device of fleet) device.raw.close();
    const commits = after.commits - before.commits;
    const cpuSeconds = after.cpuSeconds - before.cpuSeconds;
    return {
      cpuSeconds,
      eventsPerCpuSecond: events / cpuSeconds,
      eventsPerSec: events / seconds,
      seconds,
      events,
      commits,
      rowsPerCommit: events / Math.max(1, commits),
      commitMsMean: ((after.commitSecondsTotal - before.commitSecondsTotal) * 1000) / Math.max(1, commits),
      commitMsMax: after.commitSecondsMax * 1000,
      overloaded: after.overloaded,
      dropped: after.dropped,
      latency,
    };
  });
  const sorted = [...embedded.latency.latencies].sort((a, b) => a - b);

  console.log(`cloud bench: the same load through Mosquitto (${mosquittoUrl}) ...`);
  let mosquitto: { eventsPerSec: number; seconds: number; events: number; eventsPerCpuSecond: number } | { error: string };
  try {
    mosquitto = await withCloud(ids, secretHash, { mqttUrl: mosquittoUrl, shareGroup: `bench-${runId}` }, async (child, port) => {
      const fleet = await openFleet(ids, port, secret);
      const before = await child.stats();
      const seconds = await blast(fleet, payloads, blastBatches, window);
      const after = await child.stats();
      for (const device of fleet) device.raw.close();
      const events = deviceCount * blastBatches * batchEvents;
      if (after.events - before.events !== events) throw new Error(`cloud committed ${after.events - before.events} events through Mosquitto, expected ${events}`);
      return { eventsPerSec: events / seconds, seconds, events, eventsPerCpuSecond: events / (after.cpuSeconds - before.cpuSeconds) };
    });
  } catch (error) {
    mosquitto = { error: (error as Error).message };
  }

  console.log(`cloud bench: ${idleCount} idle device connections ...`);
  const idleIds = Array.from({ length: idleCount }, (_, i) => `idle-${runId}-${i}`);
  const connections = await withCloud(idleIds, secretHash, {}, async (child, port) => {
    const before = await child.stats();
    const started = performance.now();
    const devices = await connectIdle(idleIds, port, secret, 200);
    const connectSeconds = (performance.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 500));
    const after = await child.stats();
    for (const device of devices) device.close();
    return {
      count: devices.length,
      connected: after.connected,
      connectSeconds,
      rssBytesBefore: before.rssBytes,
      rssBytesAfter: after.rssBytes,
      rssBytesPerConnection: Math.round((after.rssBytes - before.rssBytes) / devices.length),
      heapBytesPerConnection: Math.round((after.heapUsedBytes - before.heapUsedBytes) / devices.length),
    };
  });

  const load = loadavg()[0]!;
  const fdLimit = readFileSync('/proc/self/limits', 'utf8').split('\n').find((line) => line.startsWith('Max open files'))?.split(/\s+/)[3] ?? '?';
  const mosquittoRate = 'error' in mosquitto ? `failed: ${mosquitto.error}` : mosquitto.eventsPerSec.toFixed(0);
  printTable(`cloud: ${deviceCount} devices, ${batchEvents}-event batches over MQTT on loopback (${cpus().length} cores, load ${load.toFixed(1)})`, ['figure', 'value', 'target'], [
    ['ingest events/s (embedded Aedes, SQLite, durable)', embedded.eventsPerSec.toFixed(0), '>= 100000'],
    ['  events, seconds', `${embedded.events}, ${embedded.seconds.toFixed(2)}`, ''],
    ['  events per cloud CPU second (load-independent)', embedded.eventsPerCpuSecond.toFixed(0), ''],
    ['  commits, rows per commit', `${embedded.commits}, ${embedded.rowsPerCommit.toFixed(0)}`, ''],
    ['  commit ms mean / max', `${embedded.commitMsMean.toFixed(1)} / ${embedded.commitMsMax.toFixed(1)}`, ''],
    ['ingest events/s (Mosquitto, shared subscription)', mosquittoRate, ''],
    ['  events per cloud CPU second', 'error' in mosquitto ? '' : mosquitto.eventsPerCpuSecond.toFixed(0), ''],
    [`latency p50 ms at ${pacedRate} events/s`, percentile(sorted, 50).toFixed(1), ''],
    [`latency p99 ms at ${pacedRate} events/s`, percentile(sorted, 99).toFixed(1), '<= 100'],
    ['  achieved events/s, batches measured, turns skipped', `${embedded.latency.achieved.toFixed(0)}, ${sorted.length}, ${embedded.latency.skipped}`, ''],
    ['idle connections', connections.count, '10000'],
    ['  resident bytes per connection', connections.rssBytesPerConnection, '<= 20480'],
    ['  of which JS heap bytes', connections.heapBytesPerConnection, ''],
    ['  connect seconds, open-files limit', `${connections.connectSeconds.toFixed(1)}, ${fdLimit}`, ''],
  ]);
  return {
    ingest: {
      eventsPerSec: Math.round(embedded.eventsPerSec),
      devices: deviceCount,
      batchEvents,
      events: embedded.events,
      seconds: Number(embedded.seconds.toFixed(3)),
      cloudCpuSeconds: Number(embedded.cpuSeconds.toFixed(3)),
      eventsPerCloudCpuSecond: Math.round(embedded.eventsPerCpuSecond),
      commits: embedded.commits,
      commitMsMean: Number(embedded.commitMsMean.toFixed(2)),
      commitMsMax: Number(embedded.commitMsMax.toFixed(2)),
      overloaded: embedded.overloaded,
    },
    mosquitto: 'error' in mosquitto ? { error: mosquitto.error } : { eventsPerSec: Math.round(mosquitto.eventsPerSec), events: mosquitto.events, seconds: Number(mosquitto.seconds.toFixed(3)), eventsPerCloudCpuSecond: Math.round(mosquitto.eventsPerCpuSecond) },
    latency: {
      targetEventsPerSec: pacedRate,
      achievedEventsPerSec: Math.round(embedded.latency.achieved),
      batches: sorted.length,
      turnsSkipped: embedded.latency.skipped,
      p50MsAt50k: Number(percentile(sorted, 50).toFixed(2)),
      p99MsAt50k: Number(percentile(sorted, 99).toFixed(2)),
    },
    connections: {
      count: connections.count,
      rssBytesPerConnection: connections.rssBytesPerConnection,
      heapBytesPerConnection: connections.heapBytesPerConnection,
      rssBytesBefore: connections.rssBytesBefore,
      rssBytesAfter: connections.rssBytesAfter,
      connectSeconds: Number(connections.connectSeconds.toFixed(2)),
    },
    machine: { cores: cpus().length, loadAverage1m: Number(load.toFixed(2)) },
    quick,
  };
};

if (process.env[childFlag] === '1') void runChild();
