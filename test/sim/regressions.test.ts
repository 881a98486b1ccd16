// Minimal, deterministic reproductions of the bugs the fleet simulation found (test/sim/README.md,
// "Findings"). Each was `it.fails` while its bug was open; all are fixed now and kept as
// regression tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud } from '../../cloud-stub/server.ts';
import { syncSessionFactory, type SyncSession } from '../../cloud-stub/sync-session.ts';
import { createDefaultRegistry } from '../../firmware/protocol/templates/index.ts';
import { captureSession } from './fuzz/cloud-uplink.fuzz.ts';
import { Device, deviceDefaults } from '../../firmware/core/device.ts';
import { EventCache, overflowDropOldest } from '../../firmware/core/event-cache.ts';
import { StateStore } from '../../firmware/core/state-store.ts';
import { SyncEngine, syncModeContinuous, type SyncLink, type SyncOptions } from '../../firmware/core/sync-engine.ts';
import type { Network } from '../../firmware/hal/socket.ts';
import { crc32, crc32OfByteString } from '../../firmware/protocol/crc32.ts';
import { keyIdOf, stateTemplateHash } from '../../firmware/protocol/state-template.ts';
import { syncHello, syncMessage, syncMessageAck, syncWelcome } from '../../firmware/protocol/sync-messages.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { eventsDroppedTemplate } from '../../firmware/protocol/templates/events-dropped.ts';
import { telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { downlinkTopic } from '../../firmware/protocol/topics.ts';
import { FlashSimulator, PowerLoss } from '../../hal-mocks/flash-simulator.ts';

/** The engine's options; `firmwareVersion` is passed while SyncOptions still has it. */
function syncOptions(options: SyncOptions & { firmwareVersion?: string }): SyncOptions {
  return options;
}

/** A link whose MQTT in-flight window is full (publish refused with -4) until `full` is cleared. */
class WindowLink implements SyncLink {
  full = false;
  readonly published: number[] = [];
  publish(_topic: string, payload: string | Uint8Array, _qos: number, _retain: boolean): number {
    if (this.full) return -4;
    this.published.push(typeof payload === 'string' ? payload.charCodeAt(0) : payload[0]!);
    return 1;
  }
  subscribe(): number {
    return 1;
  }
  start(): void {}
  stop(): void {}
  inFlight(): number {
    return this.full ? 4 : 0;
  }
}

/** Device hardware frozen in time: no timers fire, the clock stands, the log is dropped. */
function stillHardware(network: Network, flash: FlashSimulator): ConstructorParameters<typeof Device>[0] {
  return {
    network, flash, clock: { nowMs: () => 0, epochMs: () => 1_700_000_000_000 },
    timers: { setTimeout: () => 1, clearTimeout: () => {} }, random: { nextUint32: () => 7 },
    log: { info: () => {}, warn: () => {}, error: () => {} }, crc32, crc32OfText: crc32OfByteString,
  };
}

function engine(link: WindowLink, applied: number[]): SyncEngine {
  const state = new StateStore(new FlashSimulator({ sectorCount: 4 }), demoStateTemplate, { crc32, coalesceWindowMs: 0 });
  state.mount();
  const cache = new EventCache({ capacityBytes: 2048, overflowPolicy: overflowDropOldest, firstSeq: 1 });
  let now = 0;
  const sync = new SyncEngine(link, cache, state, demoStateTemplate, [telemetryTemplate, eventsDroppedTemplate], { nowMs: () => (now += 10), epochMs: () => Date.now() },
    { info: () => {}, warn: () => {}, error: () => {} }, crc32,
    { onStateChanged: () => {}, onMessage: (seq) => applied.push(seq), onSyncOutcome: () => {}, onCloudError: () => {} },
    syncOptions({
      deviceId: 'reg-1', epoch: 1, firmwareVersion: '0.1.0', stateTemplateHash: stateTemplateHash(demoStateTemplate, crc32OfByteString),
      mode: syncModeContinuous, periodMs: 60_000, fillBytesTrigger: 1536, messageSeqKeyId: keyIdOf(demoStateTemplate, '_messageSeq'),
    }));
  sync.start(0);
  return sync;
}

describe('fleet simulation findings (minimal reproductions)', () => {
  // Sim: `npm run sim -- --seed 2 --seeds 1` (code hello-refused) before d7a7686. On reconnect the
  // MQTT client resends its unacknowledged publishes first, filling the window, then the engine
  // published HELLO, which was refused and never sent again. Fixed: kept as a regression test.
  it('[SYNC-1] HELLO refused by a full MQTT window is sent once the window frees', () => {
    const link = new WindowLink();
    const sync = engine(link, []);
    link.full = true;
    sync.onConnect(false);
    link.full = false;
    sync.onPublishAcked(1);
    sync.tick(1000);
    expect(link.published).toContain(syncHello);
  });

  // Sim: seeds 1, 16, 23 (code message-ack-refused). A MESSAGE applied while the window is full
  // got no MESSAGE_ACK; the cloud does not resend within the session, so it stayed 'delivered'.
  it('[SYNC-14] a MESSAGE_ACK refused by a full MQTT window is sent once the window frees', () => {
    const link = new WindowLink();
    const applied: number[] = [];
    const sync = engine(link, applied);
    sync.onConnect(false);
    const welcome = new Uint8Array([syncWelcome, 1, 0, 0]);
    sync.onMessage(downlinkTopic('reg-1'), welcome, 0, welcome.length);
    link.full = true;
    const message = new Uint8Array([syncMessage, 1, 0, 0x7b, 0x7d]);
    sync.onMessage(downlinkTopic('reg-1'), message, 0, message.length);
    expect(applied).toEqual([1]);
    link.full = false;
    sync.onPublishAcked(1);
    sync.tick(1000);
    expect(link.published).toContain(syncMessageAck);
  });

  // Sim: seeds 39, 40 (code drop-report-evicted). Under drop-oldest an events-dropped report was an
  // event like any other: evicted by a later overflow, the count it carried was gone. Now a report
  // is added only where it fits without evicting, and its count is cleared only when the cloud
  // acknowledges it: every event accepted is held, acknowledged, or counted as dropped.
  it('[CACHE-3] drops counted in an evicted events-dropped report are still reported', () => {
    const offline: Network = {
      connect: (_host, _port, _secure, handlers) => {
        setTimeout(() => handlers.onClose(true), 0);
        return { write: () => false, close: () => {} };
      },
    };
    const device = new Device(
      stillHardware(offline, new FlashSimulator({ sectorCount: 4 })),
      { deviceId: 'reg-2', secret: 's', mqttHost: '127.0.0.1', mqttPort: 1, tls: false },
      { ...deviceDefaults(demoStateTemplate, [telemetryTemplate]), cacheBytes: 320, overflowPolicy: overflowDropOldest },
      {},
    );
    const values = [1_700_000_000_000, 21.5, 40, 3700];
    const accountedFor = (ackedEvents: number) => device.cache.droppedCount + device.cache.count + ackedEvents;
    for (let i = 0; i < 60; i++) device.emit(telemetryTemplate, values);
    expect(device.cache.droppedCount).toBeGreaterThan(0);
    // A full ring has no room for the report: nothing is evicted for it, the count stands.
    device.tick();
    expect(accountedFor(0)).toBe(device.cache.nextSeq - 1);
    // The cloud acknowledges ten events: now the report fits, and it waits for its own ack.
    const acked = device.cache.oldestSeq() + 9;
    const ack = new Uint8Array([0x82, device.epoch, acked]);
    device.sync.onMessage(downlinkTopic('reg-2'), ack, 0, ack.length);
    device.tick();
    const reportSeq = device.cache.nextSeq - 1;
    // Enough new events to push everything out of the ring, the unacknowledged report included.
    for (let i = 0; i < 60; i++) device.emit(telemetryTemplate, values);
    expect(device.cache.oldestSeq()).toBeGreaterThan(reportSeq);
    device.tick();
    // Every event accepted is held, acknowledged, or counted (the evicted report among them).
    expect(accountedFor(10)).toBe(device.cache.nextSeq - 1);
  });

  // Sim: seeds 143, 174, 185, 234, 281 of `npm run sim -- --seed 100 --seeds 300` (code message-gap;
  // timing-dependent). The device applies any seq above the last one and acknowledges
  // cumulatively: message 2 never reaches the application, yet the ack of 3 marks it acknowledged.
  it('[SYNC-14] [SYNC-26] a MESSAGE after a gap is not applied, and the ack names the last one applied in order', () => {
    const link = new WindowLink();
    const applied: number[] = [];
    const sync = engine(link, applied);
    sync.onConnect(false);
    const down = downlinkTopic('reg-1');
    const welcome = new Uint8Array([syncWelcome, 1, 0, 0]);
    sync.onMessage(down, welcome, 0, welcome.length);
    // Each MESSAGE names the seq it follows: 3 follows 2, which this device never got.
    const first = new Uint8Array([syncMessage, 1, 0, 0x7b, 0x7d]);
    sync.onMessage(down, first, 0, first.length);
    const third = new Uint8Array([syncMessage, 3, 2, 0x7b, 0x7d]);
    sync.onMessage(down, third, 0, third.length);
    expect(applied).toEqual([1]);
    // The ack names 1 with the gap flag, so the cloud sends again from 1.
    expect(link.published.filter((type) => type === syncMessageAck)).toHaveLength(2);
    // A message the cloud skipped on purpose (2 expired) follows 1: applied.
    const skip = new Uint8Array([syncMessage, 3, 1, 0x7b, 0x7d]);
    sync.onMessage(down, skip, 0, skip.length);
    expect(applied).toEqual([1, 3]);
  });

  // Sim: seeds 144, 154, 155, 189, 194 of `npm run sim -- --seed 100 --seeds 300` (code
  // message-ack-lost). The HELLO says the device applied message 1; the session believes it, but
  // the repository keeps the message 'delivered' (never acked), so it later 'expires'.
  it('[SYNC-1] [SYNC-4] the last message seq in HELLO acknowledges the messages in the repository', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-reg-'));
    let session: SyncSession | null = null;
    const cloud = await startCloud({
      dataDir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {},
      session: (context) => (session = syncSessionFactory({ templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate] })(context)),
    });
    try {
      const repository = cloud.context.repository;
      expect((await provisionDevice(repository, 'reg-3', { hashCost: 1024 })).outcome).toBe('created');
      cloud.context.transport = { ...cloud.context.transport, sendDownlink: async () => {}, isConnected: () => true };
      const queued = await repository.enqueueMessage('reg-3', { led: 1 }, 600, Date.now(), 100);
      expect(queued.outcome).toBe('queued');
      const uplink = (payload: Uint8Array) => session!.handleUplink({ deviceId: 'reg-3', channel: 'uplink', payload: Buffer.from(payload), receivedAtMs: Date.now() });
      // Session 1 delivers message 1; its MESSAGE_ACK is lost. Session 2's HELLO reports it applied.
      await uplink(captureSession('reg-3', 1, 0)[0]!);
      expect((await repository.listMessages('reg-3'))[0]!.status).toBe('delivered');
      await uplink(captureSession('reg-3', 2, 0, 1)[0]!);
      expect((await repository.listMessages('reg-3'))[0]!.status).toBe('acked');
    } finally {
      await cloud.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  // Sim: seeds 83 and 227 of `npm run sim -- --seeds 300` (code state-unacked, the known liveness
  // issue). Power failed between storing the last applied message seq and marking that local key
  // acknowledged: after the reboot `_messageSeq` stayed "changed" for good, so sync never saw its
  // work done (no sync outcome, a periodic device never going idle). Fixed: every local key is
  // acknowledged at boot.
  it('[SYNC-9] a power cut between a local write and its ack leaves no change pending after the reboot', () => {
    const flash = new FlashSimulator({ sectorCount: 4 });
    const hardware = () => stillHardware({ connect: () => ({ write: () => false, close: () => {} }) }, flash);
    const config = { deviceId: 'reg-7', secret: 's', mqttHost: '127.0.0.1', mqttPort: 1, tls: false, eventFlashBytes: 0 };
    const options = deviceDefaults(demoStateTemplate, [telemetryTemplate]);
    const applied: number[] = [];
    const first = new Device(hardware(), config, options, { onMessage: (seq) => applied.push(seq) });
    const messageSeq = keyIdOf(demoStateTemplate, '_messageSeq');
    expect(first.state.changedCount()).toBe(0);
    // MESSAGE 1 (follows 0): applied, its seq stored (one flash write), then power fails at the ack.
    flash.cutPowerAfter(1);
    const message = new Uint8Array([syncMessage, 1, 0, 0x7b, 0x7d]);
    expect(() => first.sync.onMessage(downlinkTopic('reg-7'), message, 0, message.length)).toThrow(PowerLoss);
    expect(applied).toEqual([1]);
    flash.restorePower();
    const second = new Device(hardware(), config, options, {});
    expect(second.state.getNumber(messageSeq)).toBe(1);
    expect(second.state.isChanged(messageSeq)).toBe(false);
    expect(second.state.changedCount()).toBe(0);
  });

  // Fuzz: `npm run fuzz -- cloud-uplink --seed 1 --cases 2000`. [SYNC-9] says local keys ('_')
  // are never replicated, but a STATE report naming one is stored as a reported value.
  it('[SYNC-3] [SYNC-9] a STATE report of a local key is refused, not stored', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-reg-'));
    let session: SyncSession | null = null;
    const cloud = await startCloud({
      dataDir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {},
      session: (context) => (session = syncSessionFactory({ templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate] })(context)),
    });
    try {
      const repository = cloud.context.repository;
      expect((await provisionDevice(repository, 'reg-4', { hashCost: 1024 })).outcome).toBe('created');
      const answers: number[] = [];
      cloud.context.transport = { ...cloud.context.transport, sendDownlink: async (_id, payload) => void answers.push(payload[0]!), isConnected: () => true };
      const uplink = (payload: Uint8Array) => session!.handleUplink({ deviceId: 'reg-4', channel: 'uplink', payload: Buffer.from(payload), receivedAtMs: Date.now() });
      await uplink(captureSession('reg-4', 1, 0)[0]!);
      // STATE: one key, _bootEpoch (id 0), version 1, 4 bytes.
      await uplink(new Uint8Array([0x03, 1, keyIdOf(demoStateTemplate, '_bootEpoch'), 1, 4, 7, 0, 0, 0]));
      const state = await repository.getState('reg-4');
      expect(state?.entries.find((e) => e.key === '_bootEpoch')?.reportedVersion ?? null).toBeNull();
    } finally {
      await cloud.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
