// Seeded fuzzer for the cloud's MQTT uplink handling [SYNC-16]: random bytes and mutations of real
// sync messages (captured from a device sync engine: HELLO, STATE, EVENTS, RPC_CALL, MESSAGE_ACK,
// STATE_APPLIED) are fed to SyncSession.handleUplink of a running cloud stub (SQLite). The session
// must never throw, must answer only with downlink types, must answer an unknown message type
// with an error, must store nothing that does not fit its template, must hold at most one session
// per device, and must still open a session and acknowledge events afterwards.
// `npm run fuzz -- cloud-uplink --cases N`; a short seeded run is in cloud-fuzz.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionDevice } from '../../../cloud-stub/provisioning.ts';
import { startCloud } from '../../../cloud-stub/server.ts';
import { SyncSession, syncSessionFactory } from '../../../cloud-stub/sync-session.ts';
import { EventCache, overflowDropOldest } from '../../../firmware/core/event-cache.ts';
import { StateStore } from '../../../firmware/core/state-store.ts';
import { SyncEngine, syncModeContinuous, type SyncLink, type SyncOptions } from '../../../firmware/core/sync-engine.ts';
import { crc32, crc32OfByteString } from '../../../firmware/protocol/crc32.ts';
import { keyIdOf, stateTemplateHash } from '../../../firmware/protocol/state-template.ts';
import {
  rpcStatusOk, syncError, syncEvents, syncEventsAck, syncHello, syncMessage, syncStateSet, syncWelcome,
} from '../../../firmware/protocol/sync-messages.ts';
import { demoStateTemplate } from '../../../firmware/protocol/templates/demo-state.ts';
import { eventsDroppedTemplate } from '../../../firmware/protocol/templates/events-dropped.ts';
import { allTemplates, createDefaultRegistry, telemetryTemplate } from '../../../firmware/protocol/templates/index.ts';
import { downlinkTopic } from '../../../firmware/protocol/topics.ts';
import { FlashSimulator, seededRandom } from '../../../hal-mocks/flash-simulator.ts';
import { runFuzzInChild, type AsyncFuzzResult } from './run-in-child.ts';

export const summary = 'cloud sync session uplink handling (cloud-stub/sync-session.ts handleUplink)';

const uplinkTypes = new Set([1, 2, 3, 4, 5, 6]);
const downlinkTypes = new Set([0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x8f]);
const devices = ['fz-0', 'fz-1', 'fz-2'];

/** The engine's options; `firmwareVersion` is passed while SyncOptions still has it. */
function syncOptions(options: SyncOptions & { firmwareVersion?: string }): SyncOptions {
  return options;
}

/** Captures what a device sync engine publishes. */
class CaptureLink implements SyncLink {
  readonly published: Uint8Array[] = [];
  publish(_topic: string, payload: string | Uint8Array): number {
    this.published.push(typeof payload === 'string' ? Uint8Array.from(payload, (c) => c.charCodeAt(0)) : payload.slice());
    return 1;
  }
  subscribe(): number {
    return 1;
  }
  start(): void {}
  stop(): void {}
  inFlight(): number {
    return 0;
  }
}

/** Real uplink messages of one device session at `epoch`, from the device's own sync engine. */
export function captureSession(deviceId: string, epoch: number, events: number, lastMessageSeq = 0): Uint8Array[] {
  const link = new CaptureLink();
  const state = new StateStore(new FlashSimulator({ sectorCount: 4 }), demoStateTemplate, { crc32, coalesceWindowMs: 0 });
  state.mount();
  if (lastMessageSeq > 0) state.setNumber(keyIdOf(demoStateTemplate, '_messageSeq'), lastMessageSeq);
  const cache = new EventCache({ capacityBytes: 4096, overflowPolicy: overflowDropOldest, firstSeq: 1 });
  const sync = new SyncEngine(link, cache, state, demoStateTemplate, [telemetryTemplate, eventsDroppedTemplate], { nowMs: () => 0, epochMs: () => 1_700_000_000_000 },
    { info: () => {}, warn: () => {}, error: () => {} }, crc32,
    { onStateChanged: () => {}, onMessage: () => {}, onSyncOutcome: () => {}, onCloudError: () => {} },
    syncOptions({
      deviceId, epoch, firmwareVersion: '0.1.0', stateTemplateHash: stateTemplateHash(demoStateTemplate, crc32OfByteString),
      mode: syncModeContinuous, periodMs: 60_000, fillBytesTrigger: 3072, messageSeqKeyId: keyIdOf(demoStateTemplate, '_messageSeq'),
    }));
  sync.start(0);
  for (let i = 0; i < events; i++) sync.emit(telemetryTemplate, [1_700_000_000_000 + i * 1000, 20 + (i % 50) / 10, 40 + (i % 7), 3700 - (i % 13)]);
  sync.emit(eventsDroppedTemplate, [1_700_000_000_000, 3, 0, 'dropOldest']);
  state.setNumber(keyIdOf(demoStateTemplate, 'batteryMv'), 3712);
  state.setString(keyIdOf(demoStateTemplate, 'firmware'), '0.1.0');
  sync.call('count', '{"n":1}', 60, () => {});
  sync.onConnect(false);
  const topic = downlinkTopic(deviceId);
  const feed = (bytes: number[]): void => sync.onMessage(topic, Uint8Array.from(bytes), 0, bytes.length);
  feed([syncWelcome, epoch & 0x7f, 0, 0]);
  feed([syncMessage, 1, 0x7b, 0x7d]);
  feed([syncStateSet, 1, keyIdOf(demoStateTemplate, 'led'), 3, 1, 1]);
  return link.published;
}

function mutate(source: Uint8Array, next: () => number): Uint8Array {
  let bytes = source.slice();
  const below = (n: number): number => Math.floor(next() * n);
  const rounds = 1 + below(3);
  for (let round = 0; round < rounds; round++) {
    const at = below(Math.max(1, bytes.length));
    switch (below(8)) {
      case 0:
        if (bytes.length > 0) bytes[at] ^= 1 << below(8);
        break;
      case 1:
        if (bytes.length > 0) bytes[at] = below(256);
        break;
      case 2:
        bytes = bytes.slice(0, below(bytes.length + 1));
        break;
      case 3: {
        const extra = Uint8Array.from({ length: 1 + below(8) }, () => below(256));
        const grown = new Uint8Array(bytes.length + extra.length);
        grown.set(bytes.subarray(0, at));
        grown.set(extra, at);
        grown.set(bytes.subarray(at), at + extra.length);
        bytes = grown;
        break;
      }
      case 4: // a varint field blown up: continuation bits on a run of bytes
        bytes.fill(0xff, at, at + 1 + below(10));
        break;
      case 5: // the type byte: another uplink type, or anything
        if (bytes.length > 0) bytes[0] = next() < 0.7 ? 1 + below(6) : below(256);
        break;
      case 6: // counts and lengths (second and third bytes) to extremes
        if (bytes.length > 2) bytes[1 + below(2)] = [0, 1, 127, 128, 255][below(5)]!;
        break;
      default:
        bytes = new Uint8Array([...bytes.subarray(0, at), ...bytes.subarray(at + 1 + below(6))]);
    }
  }
  return bytes;
}

function checkStoredValue(where: string, value: unknown, def: { type: string; min?: number; max?: number; values?: string[] }): void {
  if (def.type === 'enum') {
    if (typeof value !== 'string' || !(def.values ?? []).includes(value)) throw new Error(`${where}: enum value ${JSON.stringify(value)} stored`);
    return;
  }
  if (def.type === 'bool') {
    if (typeof value !== 'boolean') throw new Error(`${where}: bool value ${JSON.stringify(value)} stored`);
    return;
  }
  if (def.type === 'string' || def.type === 'bytes') {
    if (typeof value !== 'string') throw new Error(`${where}: string value ${JSON.stringify(value)} stored`);
    return;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`${where}: non-number ${JSON.stringify(value)} stored`);
  const slack = 1e-6 * Math.max(1, Math.abs(value));
  if (def.type !== 'timestamp' && ((def.min !== undefined && value < def.min - slack) || (def.max !== undefined && value > def.max + slack))) {
    throw new Error(`${where}: ${value} outside [${def.min}, ${def.max}] stored`);
  }
}

export async function fuzzAsync(seed: number, cases: number): Promise<AsyncFuzzResult> {
  const next = seededRandom(seed);
  const below = (n: number): number => Math.floor(next() * n);
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-fuzz-uplink-'));
  let session: SyncSession | null = null;
  const rpcRuns = new Map<string, number>();
  const cloud = await startCloud({
    dataDir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {},
    session: (context) => {
      session = syncSessionFactory({
        templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate],
        rpc: async (deviceId, route, args) => {
          const key = `${deviceId}|${route}|${JSON.stringify(args)}`;
          rpcRuns.set(key, (rpcRuns.get(key) ?? 0) + 1);
          return { status: rpcStatusOk, body: { ok: true } };
        },
      })(context);
      return session;
    },
  });
  const result: AsyncFuzzResult = { cases: 0, codes: {} };
  const tally = (code: string): void => {
    result.codes[code] = (result.codes[code] ?? 0) + 1;
  };
  try {
    const repository = cloud.context.repository;
    for (const id of devices) {
      const outcome = await provisionDevice(repository, id, { hashCost: 1024 });
      if (outcome.outcome !== 'created') throw new Error(`provision ${id}: ${outcome.outcome}`);
    }
    // Downlinks are captured, not published: no device is connected.
    let downlinks: { deviceId: string; payload: Uint8Array }[] = [];
    cloud.context.transport = { ...cloud.context.transport, sendDownlink: async (deviceId, payload) => void downlinks.push({ deviceId, payload: payload.slice() }), isConnected: () => true };
    const corpus = devices.map((id, i) => captureSession(id, 1 + i, 40));
    const handle = async (deviceId: string, payload: Uint8Array): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`handleUplink did not finish within 5 s on ${Buffer.from(payload).toString('hex')} from ${deviceId}`)), 5000);
      });
      try {
        await Promise.race([session!.handleUplink({ deviceId, channel: 'uplink', payload: Buffer.from(payload), receivedAtMs: Date.now() }), hung]);
      } finally {
        clearTimeout(timer);
      }
    };

    for (let i = 0; i < cases; i++) {
      const index = below(devices.length + 1);
      const deviceId = index < devices.length ? devices[index]! : `fz-unknown-${below(3)}`;
      const messages = corpus[Math.min(index, devices.length - 1)]!;
      if (next() < 0.3) await handle(deviceId, messages[0]!); // a session first, so mutations reach the deeper handlers
      const pick = next();
      let payload: Uint8Array;
      if (pick < 0.1) payload = messages[below(messages.length)]!;
      else if (pick < 0.25) {
        payload = Uint8Array.from({ length: below(300) }, () => below(256));
        if (payload.length > 0 && next() < 0.6) payload[0] = 1 + below(6);
      } else payload = mutate(messages[below(messages.length)]!, next);
      downlinks = [];
      try {
        await handle(deviceId, payload);
      } catch (error) {
        throw new Error(`case ${i}: handleUplink threw on ${Buffer.from(payload).toString('hex')} from ${deviceId}: ${(error as Error).stack ?? String(error)}`);
      }
      for (const down of downlinks) {
        if (down.deviceId !== deviceId) throw new Error(`case ${i}: answered ${down.deviceId} for a message of ${deviceId}`);
        const type = down.payload[0]!;
        if (!downlinkTypes.has(type)) throw new Error(`case ${i}: downlink of type ${type}`);
        tally(type === syncError ? `error ${down.payload[1]}` : `0x${type.toString(16)}`);
      }
      if ((payload.length === 0 || !uplinkTypes.has(payload[0]!)) && !downlinks.some((d) => d.payload[0] === syncError)) {
        throw new Error(`case ${i}: message of type ${payload[0]} got no error answer`);
      }
      const held = (session as unknown as { sessions: Map<string, unknown> }).sessions.size;
      if (held > devices.length + 3) throw new Error(`case ${i}: ${held} sessions held`);
      result.cases++;
    }

    // Nothing stored that does not fit its template.
    const templates = new Map(allTemplates().map((t) => [t.name, t]));
    for (const id of devices) {
      for (const event of await repository.listEvents(id, { limit: 100_000 })) {
        const template = templates.get(event.templateId);
        if (template === undefined) throw new Error(`${id}: stored an event of template '${event.templateId}'`);
        const fields = event.fields as Record<string, unknown>;
        const names = template.definition.fields.map((f) => f.name);
        if (Object.keys(fields).sort().join() !== [...names].sort().join()) throw new Error(`${id}: stored fields ${Object.keys(fields).join()} for ${template.name}`);
        for (const def of template.definition.fields) checkStoredValue(`${id} ${template.name}.${def.name}`, fields[def.name], def);
      }
      const state = await repository.getState(id);
      for (const entry of state?.entries ?? []) {
        const field = demoStateTemplate.fields[keyIdOf(demoStateTemplate, entry.key)];
        if (field === undefined) throw new Error(`${id}: stored state key '${entry.key}'`);
        if (entry.reportedVersion === null) continue;
        // Known open issue (regressions.test.ts): the session stores local '_' keys a report names.
        if (entry.key.startsWith('_')) tally(`known issue: stored local key ${entry.key}`);
        const type = typeof entry.reportedValue;
        if (entry.reportedValue !== null && type !== 'number' && type !== 'boolean' && type !== 'string') throw new Error(`${id}: stored ${entry.key} = ${JSON.stringify(entry.reportedValue)}`);
      }
    }
    // One upstream run per idempotency key, however the requests were mangled: never more runs for
    // a device than requests (one per key) stored for it.
    for (const id of devices) {
      let runs = 0;
      for (const [key, n] of rpcRuns) if (key.startsWith(`${id}|`)) runs += n;
      const requests = (await repository.listRpcRequests(id, 100_000)).length;
      if (runs > requests) throw new Error(`${id}: ${runs} RPC runs for ${requests} idempotency keys`);
      tally(`rpc runs ${runs > 0 ? 'some' : 'none'}`);
    }
    // Still alive: a fresh epoch opens a session and gets its events acknowledged.
    const fresh = captureSession(devices[0]!, 100 + (seed % 20), 5);
    downlinks = [];
    for (const message of fresh) await handle(devices[0]!, message);
    if (!downlinks.some((d) => d.payload[0] === syncWelcome)) throw new Error('no WELCOME for a valid HELLO after the fuzzing');
    if (fresh.some((m) => m[0] === syncEvents) && !downlinks.some((d) => d.payload[0] === syncEventsAck)) throw new Error('no EVENTS_ACK for valid events after the fuzzing');
    void syncHello;
    return result;
  } finally {
    await cloud.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** For `npm run fuzz -- cloud-uplink`: the async loop in a child process (the runner is synchronous). */
export function fuzz(seed: number, cases: number): AsyncFuzzResult {
  return runFuzzInChild(fileURLToPath(import.meta.url), seed, cases);
}
