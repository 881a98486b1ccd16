// The seeded fleet simulation (issue 8): a few device cores and the real cloud stub over real TCP,
// each device behind its own fault proxy, with faults drawn from the seed (cuts mid-packet,
// partitions, stalls, duplicated packets both ways, power loss at a flash operation, torn writes,
// resets mid-sync, cloud+broker restarts on the same data directory, worn-out flash, clock jumps).
// After the faults the links heal, the fleet must converge, and the invariants are checked.
// `runSimulation(seed)` returns what happened and every violation; the same seed draws the same
// fleet, workload and fault schedule (timing on real sockets varies, see README.md).
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { overflowDropOldest, overflowRejectNewest } from '../../firmware/core/event-cache.ts';
import { mqttInFlightMessagesMax } from '../../firmware/protocol/limits.ts';
import { keyIdOf } from '../../firmware/protocol/state-template.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { eventsDroppedTemplate } from '../../firmware/protocol/templates/events-dropped.ts';
import { telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { seededRandom } from '../../hal-mocks/flash-simulator.ts';
import { TcpFaultProxy } from '../../hal-mocks/tcp-fault-proxy.ts';
import { ChildSimCloud, CountingUpstream, SimCloud, type SimCloudApi } from './sim-cloud.ts';
import { SimDevice } from './sim-device.ts';
import type { Device } from '../../firmware/core/device.ts';

export const faultKinds = [
  'link-cut', 'partition', 'stall', 'dup-uplink', 'dup-downlink', 'power-cut', 'torn-write', 'reset',
  'cloud-restart', 'cloud-kill', 'flash-worn', 'clock-jump', 'clock-skip', 'backlog-reboot',
] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface SimOptions {
  /** Devices in the fleet (default: 2 or 3, from the seed). */
  devices?: number;
  /** How long faults and workload run, in ms (default 700). */
  activityMs?: number;
  /** How long the healed fleet may take to converge (default 8000 ms). */
  convergeMs?: number;
  /** Faults that may be drawn (default: all but flash-worn, see README.md). */
  kinds?: readonly FaultKind[];
  /**
   * Run the cloud stub as a child process (slower): `cloud-kill` faults SIGKILL it mid-sync and a
   * new one starts on the same data directory. Duplicated downlinks are not injected in this mode.
   */
  cloudProcess?: boolean;
  /** Run the real firmware bundle in the Espruino sandbox instead (sandbox-sim.ts; one device, slowest). */
  sandbox?: boolean;
  /**
   * Turn on the durable event cache (issue 9) on every device, with a flush delay drawn from the
   * seed, and draw `backlog-reboot` faults (thousands of events queued offline, then a reset).
   */
  eventFlash?: boolean;
  /** Faults per run: drawn from [min, max] (default 3..8). */
  faultsMin?: number;
  faultsMax?: number;
}

/** One broken invariant: a short code (for tallies and known-issue lists) and the details. */
export interface Violation {
  code: string;
  message: string;
}

/** What the invariant checks count: per run, and summed over a sweep. */
export interface Tally {
  /** Events accepted into device caches (telemetry and drop reports). */
  events: number;
  delivered: number;
  /** Acknowledged or still-held events that never reached the cloud (a violation when > 0). */
  lost: number;
  /** Unacknowledged events in RAM at a power cut or reset: allowed loss, accounted here. */
  lostPowerCut: number;
  /** Events evicted by cache overflow and not delivered: allowed, and each must be reported. */
  droppedOverflow: number;
  /** Events of a boot that died unacknowledged, outside its RAM, that reached the cloud (flash tier). */
  deliveredAfterReboot: number;
  duplicated: number;
  corrupted: number;
  /** Events still held by a device that never converged (not lost; a liveness failure). */
  stuck: number;
  /** Replicated keys on which device and cloud disagree after the final sync. */
  diverged: number;
  messages: number;
}

export function emptyTally(): Tally {
  return { events: 0, delivered: 0, lost: 0, lostPowerCut: 0, droppedOverflow: 0, deliveredAfterReboot: 0, duplicated: 0, corrupted: 0, stuck: 0, diverged: 0, messages: 0 };
}

export interface SimRunResult extends Tally {
  seed: number;
  devices: number;
  boots: number;
  /** Faults injected, by kind; `byte-cut` counts connections the proxies cut mid-stream. */
  faults: Record<string, number>;
  rpcCalls: number;
  /** Largest figures seen while sampling (memory bounds). */
  peaks: { cacheBytes: number; inFlight: number; cloudSessions: number };
  converged: boolean;
  violations: Violation[];
  durationMs: number;
}

/** The command that replays one seed. */
export function replayCommand(seed: number, options: SimOptions = {}): string {
  const extra = (options.kinds !== undefined ? ` --faults ${options.kinds.join(',')}` : '') + (options.cloudProcess === true ? ' --cloud-process' : '') + (options.sandbox === true ? ' --sandbox' : '') + (options.eventFlash === true ? ' --event-flash' : '');
  return `npm run sim -- --seed ${seed} --seeds 1${extra}`;
}

const batteryMv = keyIdOf(demoStateTemplate, 'batteryMv');
const led = keyIdOf(demoStateTemplate, 'led');
const reportInterval = keyIdOf(demoStateTemplate, 'reportIntervalSec');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Where a partitioned proxy connects: a loopback port that drops every connection at once. It is
 * held for the whole run: a port merely closed could be taken by a concurrent run's broker, which
 * would refuse this run's devices as unknown (CONNACK 4), and they would wait mqttAuthRetryMs.
 */
async function deadEnd(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

interface Fault {
  atMs: number;
  kind: FaultKind;
  device: number;
  /** Kind-specific: duration, operations before the cut, jump size. */
  amount: number;
  flag: boolean;
}

interface RpcCall {
  device: number;
  boot: number;
  results: number[];
}

export async function runSimulation(seed: number, options: SimOptions = {}): Promise<SimRunResult> {
  const started = performance.now();
  const random = seededRandom(seed);
  const below = (n: number): number => Math.floor(random() * n);
  const deviceCount = options.devices ?? 2 + below(2);
  const activityMs = options.activityMs ?? 700;
  const kinds = options.kinds ?? faultKinds.filter((kind) => kind !== 'flash-worn' && (kind !== 'cloud-kill' || options.cloudProcess === true) && (kind !== 'dup-downlink' || options.cloudProcess !== true) && (kind !== 'backlog-reboot' || options.eventFlash === true));
  const faultsMin = options.faultsMin ?? 3;
  const faultsMax = options.faultsMax ?? 8;
  const violations: Violation[] = [];
  const violate = (code: string, message: string): void => {
    violations.push({ code, message });
  };
  const faults: Record<string, number> = {};
  const count = (kind: string, n = 1): void => {
    faults[kind] = (faults[kind] ?? 0) + n;
  };

  // The schedule is drawn first, all of it from the seed.
  const schedule: Fault[] = [];
  const faultCount = kinds.length === 0 ? 0 : faultsMin + below(faultsMax - faultsMin + 1);
  for (let i = 0; i < faultCount; i++) {
    schedule.push({ atMs: 30 + below(Math.max(1, activityMs - 60)), kind: kinds[below(kinds.length)]!, device: below(deviceCount), amount: random(), flag: random() < 0.5 });
  }
  schedule.sort((a, b) => a.atMs - b.atMs);
  const linkFaults = random() < 0.6;
  const fleet = Array.from({ length: deviceCount }, (_, i) => ({
    cacheBytes: [320, 700, 2048, 8192][below(4)]!,
    policy: random() < 0.7 ? overflowDropOldest : overflowRejectNewest,
    splitChance: linkFaults ? random() * 0.5 : 0,
    maxDelayMs: linkFaults && random() < 0.5 ? 1 + below(4) : 0,
    cutBytes: linkFaults && random() < 0.5 ? 300 + below(3000) : 0,
    emitEveryMs: 8 + below(25),
    // Drawn only with the tier on, so the seeds of runs without it stay as they were.
    eventFlashFlushMs: options.eventFlash === true ? [0, 20, 100, 10_000][below(4)]! : -1,
    // 32 KiB fills up in a backlog-reboot: the tier's own drop-oldest, counted and reported.
    eventFlashSectors: options.eventFlash === true ? [8, 32][below(2)]! : 0,
    index: i,
  }));

  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-sim-'));
  const upstream = new CountingUpstream();
  const cloud: SimCloudApi = options.cloudProcess === true ? new ChildSimCloud(dataDir, upstream) : new SimCloud(dataDir, upstream, seededRandom(seed ^ 0x5eed));
  const proxies: TcpFaultProxy[] = [];
  const devices: SimDevice[] = [];
  const partitioned = new Set<number>();
  const intervals: NodeJS.Timeout[] = [];
  const timeouts = new Set<NodeJS.Timeout>();
  // Set when the run is over: a device that dies while being stopped (a power cut still armed)
  // must not be powered on again after it, or it would run on, unseen, in the process.
  let finished = false;
  let deadEndServer: { port: number; close: () => Promise<void> } | null = null;
  const later = (ms: number, body: () => void): void => {
    if (finished) return;
    const timer = setTimeout(() => {
      timeouts.delete(timer);
      body();
    }, ms);
    timeouts.add(timer);
  };
  const rpcCalls = new Map<number, RpcCall>();
  const messagesQueued = new Map<string, number[]>();
  const peaks = { cacheBytes: 0, inFlight: 0, cloudSessions: 0 };
  let healing = false;
  let converged = false;
  let cloudBusy: Promise<void> = Promise.resolve();

  try {
    await upstream.start();
    const cloudPort = await cloud.start();
    deadEndServer = await deadEnd();
    const unreachable = deadEndServer.port;
    for (const spec of fleet) {
      const deviceId = `sim${seed}-${spec.index}`;
      const secret = await cloud.provision(deviceId);
      const proxy = await TcpFaultProxy.start({
        targetHost: '127.0.0.1', targetPort: cloudPort, seed: seed * 16 + spec.index,
        splitChance: spec.splitChance, maxDelayMs: spec.maxDelayMs,
        cutAfterBytesMin: spec.cutBytes > 0 ? spec.cutBytes : undefined, cutAfterBytesMax: spec.cutBytes > 0 ? spec.cutBytes * 3 : undefined,
      });
      proxies.push(proxy);
      const device = new SimDevice({
        config: { deviceId, secret, mqttHost: '127.0.0.1', mqttPort: proxy.port, tls: false },
        seed: seed * 16 + spec.index,
        cacheBytes: spec.cacheBytes,
        overflowPolicy: spec.policy,
        eventFlashFlushMs: spec.eventFlashFlushMs,
        eventFlashSectors: spec.eventFlashSectors,
        onViolation: (message) => violate('crash', message),
        onDeath: () => later(healing ? 0 : 10 + below(60), () => device.powerOn()),
      });
      devices.push(device);
      messagesQueued.set(deviceId, []);
      device.powerOn();
    }

    // Workload: every device emits telemetry, changes a device-owned key now and then, calls RPCs.
    let emitted = 0;
    let rpcN = 0;
    const emitOne = (sim: SimDevice, device: Device): void => {
      const i = emitted++;
      const ts = Math.floor((Date.now() + sim.epochOffsetMs) / 1000) * 1000;
      const values = [ts, 20 + (i % 50) / 10, 40 + (i % 7), 3700 - (i % 13)];
      const seq = device.emit(telemetryTemplate, values);
      if (seq > 0) {
        const entry = sim.currentLedger?.events.get(seq);
        if (entry !== undefined) entry.values = values;
      }
    };
    for (const spec of fleet) {
      const sim = devices[spec.index]!;
      intervals.push(setInterval(() => {
        sim.run((device) => {
          const n = 1 + below(3);
          for (let k = 0; k < n; k++) emitOne(sim, device);
          if (random() < 0.2) device.state.setNumber(batteryMv, 3000 + below(1000));
          if (random() < 0.05) {
            const n = ++rpcN;
            const call: RpcCall = { device: spec.index, boot: sim.boots, results: [] };
            if (device.sync.call('count', JSON.stringify({ n }), 30, (status) => call.results.push(status)) > 0) rpcCalls.set(n, call);
          }
        });
      }, spec.emitEveryMs));
    }
    // Cloud workload: desired changes and cloud-to-device messages.
    intervals.push(setInterval(() => {
      if (!cloud.isRunning || healing) return;
      const target = devices[below(devices.length)]!;
      const deviceId = target.deviceId;
      const kind = random();
      const ledValue = random() < 0.5;
      const interval = 5 + below(600);
      cloudBusy = cloudBusy.then(async () => {
        try {
          if (kind < 0.5) {
            await cloud.patchDesired(deviceId, kind < 0.25 ? { led: ledValue } : { reportIntervalSec: interval });
          } else {
            const seq = await cloud.enqueueMessage(deviceId, { k: interval });
            if (seq !== null) messagesQueued.get(deviceId)!.push(seq);
          }
        } catch {
          // The cloud stopped under the call (a restart fault): nothing was queued.
        }
      });
    }, 40));
    // Memory bounds, sampled.
    intervals.push(setInterval(() => {
      for (const sim of devices) {
        const device = sim.device;
        if (device === null) continue;
        peaks.cacheBytes = Math.max(peaks.cacheBytes, device.cache.bytesUsed);
        peaks.inFlight = Math.max(peaks.inFlight, device.mqtt.inFlight());
        if (device.cache.bytesUsed > device.cache.capacity) violate('memory', `${sim.deviceId}: cache holds ${device.cache.bytesUsed} bytes, over its ${device.cache.capacity}`);
        if (device.mqtt.inFlight() > mqttInFlightMessagesMax) violate('memory', `${sim.deviceId}: ${device.mqtt.inFlight()} MQTT publishes in flight, over ${mqttInFlightMessagesMax}`);
      }
      peaks.cloudSessions = Math.max(peaks.cloudSessions, cloud.sessionCount());
      if (cloud.sessionCount() > devices.length) violate('memory', `cloud holds ${cloud.sessionCount()} sessions for ${devices.length} devices`);
    }, 20));

    // The faults, at their times.
    const healTarget = (index: number): void => {
      if (partitioned.has(index) || !cloud.isRunning) return;
      proxies[index]!.options.targetPort = cloud.mqttPort;
    };
    const t0 = performance.now();
    for (const fault of schedule) {
      const wait = fault.atMs - (performance.now() - t0);
      if (wait > 0) await sleep(wait);
      const sim = devices[fault.device]!;
      const proxy = proxies[fault.device]!;
      count(fault.kind);
      switch (fault.kind) {
        case 'link-cut':
          proxy.cutAll();
          break;
        case 'partition': {
          partitioned.add(fault.device);
          proxy.options.targetPort = unreachable;
          proxy.cutAll();
          later(30 + Math.floor(fault.amount * 250), () => {
            partitioned.delete(fault.device);
            healTarget(fault.device);
          });
          break;
        }
        case 'stall':
          proxy.freezeAll();
          later(20 + Math.floor(fault.amount * 150), () => proxy.thawAll());
          break;
        case 'dup-uplink':
          sim.dupChance = 0.3;
          later(100 + Math.floor(fault.amount * 300), () => (sim.dupChance = 0));
          break;
        case 'dup-downlink':
          cloud.dupDownlinkChance = 0.3;
          later(100 + Math.floor(fault.amount * 300), () => (cloud.dupDownlinkChance = 0));
          break;
        case 'power-cut':
        case 'torn-write': {
          // Power fails at the next flash operation, or one of the few after it: on the state
          // store's flash, or (every other draw, with the tier on) on the event cache's.
          const onEvents = sim.eventFlash !== null && Math.floor(fault.amount * 1000) % 2 === 1;
          const flash = onEvents ? sim.eventFlash! : sim.flash;
          if (fault.kind === 'power-cut') flash.cutPowerAfter(Math.floor(fault.amount * 3));
          else flash.tearOperation(Math.floor(fault.amount * 3), fault.flag ? 'random' : 'untouched');
          if (onEvents) {
            sim.run((device) => {
              for (let k = 0; k < 40; k++) emitOne(sim, device);
              device.persist();
            });
          } else {
            sim.run((device) => device.state.setNumber(batteryMv, 3000 + below(1000)));
          }
          break;
        }
        case 'backlog-reboot': {
          // [issue 9] Offline with thousands of events queued, then the power goes: what was on
          // flash must arrive after the reboot, under the epoch it was created in.
          partitioned.add(fault.device);
          proxy.options.targetPort = unreachable;
          proxy.cutAll();
          const queued = 1500 + Math.floor(fault.amount * 2500);
          sim.run((device) => {
            for (let k = 0; k < queued; k++) emitOne(sim, device);
            if (fault.flag) device.persist();
          });
          sim.resetNow(fault.flag ? 'reset after persist' : 'reset');
          later(50 + Math.floor(fault.amount * 200), () => {
            partitioned.delete(fault.device);
            healTarget(fault.device);
          });
          break;
        }
        case 'reset':
          sim.resetNow('reset');
          break;
        case 'cloud-restart':
        case 'cloud-kill': {
          const downMs = 10 + Math.floor(fault.amount * 150);
          await cloudBusy;
          // While it is down its port is free, and a concurrent run's new broker could take it.
          for (const proxy of proxies) proxy.options.targetPort = unreachable;
          if (fault.kind === 'cloud-kill') await cloud.kill();
          else await cloud.stop();
          await sleep(downMs);
          await cloud.start();
          for (let i = 0; i < proxies.length; i++) {
            healTarget(i);
            proxies[i]!.cutAll();
          }
          break;
        }
        case 'flash-worn':
          for (let sector = 0; sector < sim.flash.sectorCount; sector++) sim.flash.wearOut(sector, sim.flash.eraseCounts[sector]! - 1);
          break;
        case 'clock-jump':
          sim.epochOffsetMs += Math.floor((fault.amount - 0.5) * 2 * 10 * 86_400_000);
          break;
        case 'clock-skip':
          sim.nowSkipMs += 2000 + Math.floor(fault.amount * 4000);
          break;
      }
    }
    const rest = activityMs - (performance.now() - t0);
    if (rest > 0) await sleep(rest);

    // Heal: no more faults or workload; every device powered; links clean and pointing at the cloud.
    healing = true;
    for (const timer of intervals) clearInterval(timer);
    intervals.length = 0;
    await cloudBusy;
    for (const timer of timeouts) clearTimeout(timer);
    timeouts.clear();
    partitioned.clear();
    cloud.dupDownlinkChance = 0;
    for (let i = 0; i < proxies.length; i++) {
      const proxy = proxies[i]!;
      proxy.options.cutAfterBytesMin = undefined;
      proxy.options.cutAfterBytesMax = undefined;
      proxy.options.targetPort = cloud.mqttPort;
      proxy.thawAll();
    }
    for (const sim of devices) {
      sim.dupChance = 0;
      if (sim.alive) {
        sim.flash.restorePower();
        sim.eventFlash?.restorePower();
      } else {
        sim.powerOn();
      }
    }
    count('byte-cut', 0);
    for (const proxy of proxies) count('byte-cut', proxy.cuts);

    // Converge.
    const deadline = performance.now() + (options.convergeMs ?? 8000);
    let why: string | null = 'not checked';
    let fastForwardAt = performance.now() + 500;
    while (performance.now() < deadline) {
      // Device time runs fast while the fleet is not converged: every 500 ms of waiting adds 5 s,
      // so the engine's own timeouts (syncAckTimeoutMs, 30 s) fire within the wait.
      if (performance.now() >= fastForwardAt) {
        for (const sim of devices) sim.nowSkipMs += 5000;
        fastForwardAt += 500;
      }
      why = await notConverged(devices, cloud, rpcCalls);
      if (why !== null) {
        const stuck = devices.find((d) => why!.startsWith(d.deviceId + ' '));
        if (stuck !== undefined && !why.includes('\n')) why += `\n  ${stuck.deviceId}: ${stuck.trace.slice(-14).join(`\n  ${stuck.deviceId}: `)}`;
      }
      if (why === null) {
        converged = true;
        break;
      }
      for (const sim of devices) if (!sim.alive) sim.powerOn();
      await sleep(25);
    }
    for (const sim of devices) sim.closeLedger();
    if (why !== null) violate(nonConvergenceCode(why, devices), `the fleet did not converge after the links healed: ${why}\n  cloud log: ${cloud.recentLogs(12).join('\n  cloud log: ')}`);
    const outcome = await checkInvariants(devices, cloud, upstream, messagesQueued, rpcCalls, violations, converged);
    return {
      seed, devices: deviceCount, boots: devices.reduce((sum, d) => sum + d.boots, 0), faults: { ...faults, 'dup-uplink-packets': devices.reduce((s, d) => s + d.duplicatedPublishes, 0), 'dup-downlink-packets': cloud.duplicatedDownlinks },
      ...outcome, rpcCalls: rpcCalls.size, peaks, converged, violations, durationMs: Math.round(performance.now() - started),
    };
  } finally {
    finished = true;
    for (const timer of intervals) clearInterval(timer);
    for (const timer of timeouts) clearTimeout(timer);
    for (const sim of devices) sim.stop();
    for (const proxy of proxies) await proxy.close();
    await cloud.close();
    await upstream.stop();
    await deadEndServer?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Null once everything is delivered, acknowledged and agreed (the final sync is over), else why not. */
async function notConverged(devices: SimDevice[], cloud: SimCloudApi, rpcCalls: Map<number, RpcCall>): Promise<string | null> {
  const repository = cloud.repository;
  if (!cloud.isRunning || repository === null) return 'the cloud is down';
  for (let index = 0; index < devices.length; index++) {
    const sim = devices[index]!;
    const id = sim.deviceId;
    const device = sim.device;
    if (device === null) return `${id} is off`;
    const status = device.sync.status;
    if (!status.sessionOpen) return `${id} has no open session (connected ${status.connected}, mqtt state ${device.mqtt.state}, HELLO refused ${sim.helloRefused} times)`;
    if (device.cache.totalCount() > 0) return `${id} still holds ${device.cache.totalCount()} events (oldest seq ${device.cache.oldestSeq()}, in flight ${device.mqtt.inFlight()})`;
    if (device.cache.droppedCount > 0) return `${id} has ${device.cache.droppedCount} drops not reported`;
    if (device.spill !== null && device.spill.backlogEpoch() !== 0) return `${id} still holds ${device.spill.backlogCount()} events of boot ${device.spill.backlogEpoch()} on flash`;
    if (device.state.changedCount() > 0) {
      const state = await repository.getState(id);
      const changed = demoStateTemplate.fields.map((f, k) => ({ name: f.name, k })).filter((f) => device.state.isChanged(f.k))
        .map((f) => {
          const entry = state?.entries.find((e) => e.key === f.name);
          return `${f.name} v${device.state.version(f.k)} on the device, v${entry?.reportedVersion ?? '-'} in the cloud`;
        });
      return `${id} has ${device.state.changedCount()} state changes not acknowledged (${changed.join('; ')})`;
    }
    for (const [n, call] of rpcCalls) if (call.device === index && call.boot === sim.boots && call.results.length === 0) return `${id} waits for RPC ${n}`;
    const messages = await repository.listMessages(id);
    const open = messages.filter((m) => m.status !== 'acked' && m.status !== 'expired');
    if (open.length > 0) return `${id} has ${open.length} messages not acknowledged (first seq ${open[0]!.seq} ${open[0]!.status}, applied ${sim.applied.get(open[0]!.seq) ?? 0} times)`;
    const state = await repository.getState(id);
    for (const entry of state?.entries ?? []) {
      const keyId = keyIdOf(demoStateTemplate, entry.key);
      if (entry.desiredVersion !== null && device.state.version(keyId) !== entry.desiredVersion) return `${id} holds ${entry.key} v${device.state.version(keyId)}, the cloud desires v${entry.desiredVersion}`;
    }
  }
  return null;
}

/**
 * Names a non-convergence after what caused it, when the device shows a known cause:
 * `hello-refused` (the MQTT window was full when HELLO was published; nothing resends it),
 * `message-ack-refused` (a MESSAGE_ACK met a full window; the applied message stays unacknowledged),
 * `no-session-after-welcome` (the cloud answered "no session" while the device's session was open,
 * and the device carried on as if it were), `message-ack-lost` (an applied message whose
 * acknowledgement never reached the repository), `state-unacked` (a device-owned change the cloud
 * never acknowledged, though the session is open).
 */
function nonConvergenceCode(why: string, devices: SimDevice[]): string {
  const sim = devices.find((d) => why.startsWith(d.deviceId + ' '));
  if (sim === undefined) return 'not-converged';
  if (/no open session/.test(why) && sim.helloRefused > 0) return 'hello-refused';
  if (/messages not acknowledged .*applied [1-9]/.test(why) && (sim.refusedByType.get(0x04) ?? 0) > 0) return 'message-ack-refused';
  if (sim.noSessionErrorsInSession > 0 && sim.device?.sync.status.sessionOpen === true) return 'no-session-after-welcome';
  if (/messages not acknowledged .*applied [1-9]/.test(why)) return 'message-ack-lost';
  if (/state changes not acknowledged/.test(why)) return 'state-unacked';
  return 'not-converged';
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < 1e-9;
  return a === b;
}

/** The live boot still holds events of `epoch` (an earlier boot's) in its flash tier's backlog. */
function heldOnFlash(sim: SimDevice, epoch: number): boolean {
  const device = sim.device;
  if (device === null || device.spill === null || epoch >= device.epoch) return false;
  const backlog = device.spill.backlogEpoch();
  return backlog !== 0 && epoch >= backlog;
}

async function checkInvariants(
  devices: SimDevice[], cloud: SimCloudApi, upstream: CountingUpstream, messagesQueued: Map<string, number[]>,
  rpcCalls: Map<number, RpcCall>, violations: Violation[], converged: boolean,
): Promise<Tally> {
  const violate = (code: string, message: string): void => {
    violations.push({ code, message });
  };
  const outcome = emptyTally();
  const repository = cloud.repository;
  if (!cloud.isRunning || repository === null) throw new Error('the cloud must be running for the checks');
  await cloud.whenIdle();
  const names = ['ts', 'temp', 'hum', 'batt'];

  for (const sim of devices) {
    const id = sim.deviceId;
    // What the repository holds (it survives restarts): every row once.
    const stored = new Map<string, number>();
    let cursor: { ts: number; id: number } | undefined;
    for (;;) {
      const page = await repository.listEvents(id, { limit: 1000, after: cursor });
      for (const row of page) {
        const key = `${id}|${row.epoch}|${row.seq}`;
        stored.set(key, (stored.get(key) ?? 0) + 1);
      }
      if (page.length < 1000) break;
      cursor = { ts: page[page.length - 1]!.ts, id: page[page.length - 1]!.id };
    }
    const epochs = new Set<number>();
    for (const ledger of sim.ledgers) {
      // [SYNC-9] A boot epoch names its events for good: never reused.
      if (epochs.has(ledger.epoch)) violate('epoch-reuse', `${id}: boot epoch ${ledger.epoch} was used by two boots`);
      epochs.add(ledger.epoch);
      let reported = 0;
      let reportsLostToCut = 0;
      let reportsEvicted = 0;
      let reportsHeld = 0;
      let evicted = 0;
      for (const [seq, entry] of ledger.events) {
        outcome.events++;
        const key = `${id}|${ledger.epoch}|${seq}`;
        const delivered = cloud.delivered.get(key);
        const times = Math.max(delivered?.count ?? 0, stored.get(key) ?? 0);
        const inCut = ledger.cut !== null && seq >= ledger.cut.fromSeq && seq <= ledger.cut.toSeq;
        if (entry.evicted) evicted++;
        if (times > 1) {
          outcome.duplicated++;
          violate('duplicated', `${id}: event epoch ${ledger.epoch} seq ${seq} delivered ${times} times`);
        }
        if (times >= 1) {
          outcome.delivered++;
          if (ledger.cut !== null && !inCut && !entry.acked && !entry.evicted) outcome.deliveredAfterReboot++;
          if (delivered !== undefined && entry.templateId === telemetryTemplate.id && entry.values !== null) {
            const fields = delivered.fields;
            const bad = names.filter((name, i) => !sameValue(fields[name], entry.values![i]));
            if (delivered.templateId !== 'telemetry' || bad.length > 0) {
              outcome.corrupted++;
              violate('corrupted', `${id}: event epoch ${ledger.epoch} seq ${seq} arrived as ${delivered.templateId} ${JSON.stringify(fields)}, emitted ${JSON.stringify(entry.values)}`);
            }
          }
          if (entry.templateId === eventsDroppedTemplate.id) reported += entry.reportCount;
          continue;
        }
        // An ack from a later boot may cover events its tier dropped (the oldest seq held jumped).
        if (entry.acked || (entry.ackedLater && !entry.droppedLater)) {
          outcome.lost++;
          violate('lost-acked', `${id}: event epoch ${ledger.epoch} seq ${seq} was acknowledged but is not in the cloud`);
        } else if (entry.evicted || entry.droppedLater) {
          outcome.droppedOverflow++;
          if (entry.templateId === eventsDroppedTemplate.id) reportsEvicted += entry.reportCount;
        } else if (inCut) {
          outcome.lostPowerCut++;
          if (entry.templateId === eventsDroppedTemplate.id) reportsLostToCut += entry.reportCount;
        } else if (sim.alive && ((ledger === sim.currentLedger && seq >= sim.device!.cache.nextSeq - sim.device!.cache.totalCount()) || heldOnFlash(sim, ledger.epoch))) {
          // Still held: the device never got to send it (a liveness failure, reported as not converged).
          outcome.stuck++;
          if (entry.templateId === eventsDroppedTemplate.id) reportsHeld += entry.reportCount;
        } else {
          outcome.lost++;
          violate('lost', `${id}: event epoch ${ledger.epoch} seq ${seq} was neither delivered, acknowledged, dropped nor in RAM at a power cut`);
        }
      }
      // [CACHE-3] Every drop is reported: delivered reports, plus what a power cut took with it
      // (reports in RAM, the pending count), plus what is still pending, account for all of them.
      const drops = evicted + ledger.refused + ledger.earlierDrops;
      const pending = ledger.cut !== null ? ledger.cut.droppedPending : ledger.droppedPendingAtEnd;
      const accounted = reported + reportsLostToCut + reportsHeld + pending;
      // A report evicted before its ack leaves its count standing on the device, which reports it
      // again [CACHE-3]: so evicted reports account for nothing by themselves.
      if (accounted > drops) {
        violate('drop-overreported', `${id}: epoch ${ledger.epoch} dropped ${drops} events but reports account for ${accounted} (${reportsEvicted} in evicted reports): events evicted while in flight counted though delivered`);
      } else if (accounted < drops) {
        violate('drop-unreported', `${id}: epoch ${ledger.epoch} dropped ${drops} events (${evicted} evicted, ${ledger.refused} refused) but reports account for ${accounted} (${reported} delivered, ${reportsLostToCut} lost to a power cut, ${reportsEvicted} in evicted reports, ${reportsHeld} in reports still held, ${pending} pending)`);
      }
    }
    // Delivered events no boot accepted would be invented (or from a reused epoch).
    for (const key of cloud.delivered.keys()) {
      if (!key.startsWith(`${id}|`)) continue;
      const [, epoch, seq] = key.split('|');
      const ledger = sim.ledgers.find((l) => l.epoch === Number(epoch));
      if (ledger === undefined || !ledger.events.has(Number(seq))) violate('invented', `${id}: the cloud delivered epoch ${epoch} seq ${seq}, which no boot accepted`);
    }

    // State: after the final sync device and cloud agree on every replicated key.
    const device = sim.device;
    const state = await repository.getState(id);
    if (device !== null && state !== null && converged) {
      for (const entry of state.entries) {
        const keyId = keyIdOf(demoStateTemplate, entry.key);
        if (keyId < 0) continue;
        if (entry.reportedVersion !== null && keyId === batteryMv) {
          if (entry.reportedValue !== device.state.getNumber(keyId) || entry.reportedVersion !== device.state.version(keyId)) {
            outcome.diverged++;
            violate('diverged', `${id}: reported ${entry.key} is ${JSON.stringify(entry.reportedValue)} v${entry.reportedVersion} in the cloud, ${device.state.getNumber(keyId)} v${device.state.version(keyId)} on the device`);
          }
        }
        if (entry.desiredVersion !== null && (keyId === led || keyId === reportInterval)) {
          const value = keyId === led ? device.state.getBool(keyId) : device.state.getNumber(keyId);
          if (value !== entry.desiredValue || device.state.version(keyId) !== entry.desiredVersion) {
            outcome.diverged++;
            violate('diverged', `${id}: desired ${entry.key} is ${JSON.stringify(entry.desiredValue)} v${entry.desiredVersion} in the cloud, ${JSON.stringify(value)} v${device.state.version(keyId)} on the device`);
          }
        }
      }
      if (device.state.has(batteryMv) && !state.entries.some((e) => e.key === 'batteryMv' && e.reportedVersion !== null)) {
        outcome.diverged++;
        violate('diverged', `${id}: batteryMv is set on the device but the cloud has no reported value`);
      }
    }

    // Cloud-to-device messages: none acknowledged and lost, none applied twice.
    const messages = await repository.listMessages(id);
    outcome.messages += messages.length;
    for (const message of messages) {
      const applied = sim.applied.get(message.seq) ?? 0;
      if (message.status === 'acked' && applied === 0) violate(sim.skippedByGap.has(message.seq) ? 'message-gap' : 'message-lost', `${id}: message ${message.seq} acknowledged but never applied (applied: ${JSON.stringify([...sim.applied])}; cloud: ${messages.map((m) => `${m.seq} ${m.status}`).join(', ')})\n  ${id}: ${sim.trace.slice(-20).join(`\n  ${id}: `)}`);
      const allowed = 1 + (sim.reappliedAfterCut.get(message.seq) ?? 0);
      if (applied > allowed) violate('message-twice', `${id}: message ${message.seq} applied ${applied} times (${allowed - 1} after a power cut between applying and persisting)\n  ${id}: ${sim.trace.slice(-20).join(`\n  ${id}: `)}`);
    }
    for (const seq of sim.applied.keys()) {
      if (!messages.some((m) => m.seq === seq)) violate('message-invented', `${id}: applied message ${seq}, which the cloud never queued`);
    }
    void messagesQueued;
  }

  // RPC: at most one upstream run per call (idempotency key), at most one callback.
  for (const [n, hits] of upstream.hits) {
    if (hits > 1) violate('rpc-twice', `RPC call ${n} ran ${hits} times upstream`);
    if (!rpcCalls.has(n)) violate('rpc-invented', `RPC call ${n} ran upstream but no device made it`);
  }
  for (const [n, call] of rpcCalls) {
    if (call.results.length > 1) violate('rpc-twice', `RPC call ${n} got ${call.results.length} callbacks`);
  }
  return outcome;
}
