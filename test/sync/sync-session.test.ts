// The sync session end to end: a device core (real TCP, flash simulator) against the cloud stub
// (embedded broker, SQLite file, group-commit ingest). Rule ids from firmware/protocol/SPEC.md.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../firmware/protocol/state-template.ts';
import { stateErrorOwner } from '../../firmware/core/state-store.ts';
import { syncModePeriodic } from '../../firmware/core/sync-engine.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { powerMeterTemplate, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { wireErrorUnknownTemplate } from '../../firmware/protocol/wire-errors.ts';
import { createTestDevice, startTestCloud, telemetryValues, waitFor, type TestCloud } from './helpers.ts';

const led = keyIdOf(demoStateTemplate, 'led');
const batteryMv = keyIdOf(demoStateTemplate, 'batteryMv');

describe('sync session: device core against the cloud stub', () => {
  let cloud: TestCloud;
  beforeEach(async () => {
    cloud = await startTestCloud();
  });
  afterEach(async () => {
    await cloud.close();
  });

  it('[SYNC-2] [SYNC-22] events cached while offline are delivered once, decoded, and purged after the ack', async () => {
    const config = await cloud.provision('dev-a');
    const { device } = createTestDevice(config);
    for (let i = 0; i < 200; i++) expect(device.emit(telemetryTemplate, telemetryValues(i))).toBe(i + 1);
    expect(device.cache.totalCount()).toBe(200);
    device.start();
    const repository = cloud.cloud.context.repository;
    await waitFor(async () => (await repository.countEvents('dev-a')) === 200 && device.cache.totalCount() === 0, 10_000, 'all events committed and purged');
    const page = await repository.listEvents('dev-a', { limit: 500 });
    expect(page.map((event) => event.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const [ts, temp, hum, batt] = telemetryValues(123);
    expect(page[123]!.fields).toEqual({ ts, temp, hum, batt });
    expect(page[123]!.epoch).toBe(device.epoch);
    // Frames, not one publish per event.
    expect(device.sync.status.framesSent).toBeLessThan(10);
    device.stop();
  });

  it('[SYNC-30] an event of a template the device was not started with is refused at emit, and the others still flow', async () => {
    const config = await cloud.provision('dev-t');
    const { device } = createTestDevice(config);
    expect(device.emit(telemetryTemplate, telemetryValues(0))).toBe(1);
    // Known to the cloud, but not in this device's options.templates: it could never be framed.
    expect(device.emit(powerMeterTemplate, [1_700_000_000_000, 230, 1.5, 345, 1000, 50, 0.9, 25, 'running', true])).toBe(wireErrorUnknownTemplate);
    expect(device.cache.totalCount()).toBe(1);
    expect(device.cache.droppedCount).toBe(0);
    expect(device.emit(telemetryTemplate, telemetryValues(1))).toBe(2);
    device.start();
    const repository = cloud.cloud.context.repository;
    await waitFor(async () => (await repository.countEvents('dev-t')) === 2 && device.cache.totalCount() === 0, 10_000, 'both readings committed');
    device.stop();
  });

  it('[CACHE-3] [SYNC-29] events dropped by a full cache are reported to the cloud as an event of their own', async () => {
    const config = await cloud.provision('dev-f');
    const { device } = createTestDevice(config);
    for (let i = 0; i < 400; i++) device.emit(telemetryTemplate, telemetryValues(i));
    const held = device.cache.totalCount();
    const dropped = device.cache.droppedCount;
    expect(held + dropped).toBe(400);
    expect(dropped).toBeGreaterThan(0);
    device.start();
    const repository = cloud.cloud.context.repository;
    // The report waits for room in the ring, so it goes out after the events: wait until it is
    // acknowledged too (droppedCount clears then), not only until the ring is empty once.
    await waitFor(async () => device.cache.totalCount() === 0 && device.cache.droppedCount === 0 && (await repository.countEvents('dev-f')) > 0, 10_000, 'cache drained and drops reported');
    const events = await repository.listEvents('dev-f', { limit: 1000 });
    const reports = events.filter((e) => e.templateId === 'events-dropped');
    const reported = reports.reduce((sum, e) => sum + ((e.fields as { dropped: number }).dropped), 0);
    const telemetry = events.filter((e) => e.templateId === 'telemetry');
    // Every one of the 400 is either stored or counted as dropped: loss is never silent.
    expect(telemetry.length + reported).toBe(400);
    device.stop();
  });

  it('[SYNC-3] [SYNC-13] device-owned state is reported with its version and acknowledged', async () => {
    const config = await cloud.provision('dev-b');
    const { device } = createTestDevice(config);
    device.start();
    expect(device.state.setNumber(batteryMv, 3712)).toBe(0);
    await waitFor(() => !device.state.isChanged(batteryMv), 10_000, 'batteryMv acknowledged');
    const state = await cloud.cloud.context.repository.getState('dev-b');
    const entry = state!.entries.find((e) => e.key === 'batteryMv');
    expect(entry?.reportedValue).toBe(3712);
    expect(entry?.reportedVersion).toBe(device.state.version(batteryMv));
    // Local keys ('_') never leave the device [SYNC-9].
    expect(state!.entries.find((e) => e.key.startsWith('_'))).toBeUndefined();
    device.stop();
  });

  it('[SYNC-12] a desired change reaches a connected device at once, and an offline one at its next hello', async () => {
    const config = await cloud.provision('dev-c');
    const repository = cloud.cloud.context.repository;
    // Offline: the change waits in the cloud.
    expect((await repository.patchDesired('dev-c', 0, { led: true }, Date.now())).outcome).toBe('applied');
    const first = createTestDevice(config);
    first.device.start();
    await waitFor(() => first.device.state.getBool(led) === true, 10_000, 'led applied at hello');
    expect(first.stateChanges).toContain(led);
    // Connected: pushed through the live hub.
    const patched = await repository.patchDesired('dev-c', 1, { led: false }, Date.now());
    expect(patched.outcome).toBe('applied');
    cloud.cloud.context.live.publish({ type: 'desired', deviceId: 'dev-c', desiredVersion: 2, keys: ['led'] });
    await waitFor(() => first.device.state.getBool(led) === false, 10_000, 'led pushed while connected');
    expect(first.device.state.version(led)).toBe(2);
    // [SYNC-5] What the device applied comes back as the key's reported value.
    await waitFor(async () => {
      const entry = (await repository.getState('dev-c'))!.entries.find((e) => e.key === 'led');
      return entry?.reportedValue === false && entry.reportedVersion === 2;
    }, 10_000, 'led reported as applied');
    first.device.stop();
  });

  it('periodic mode: connects every period, syncs, disconnects when idle; syncNow connects at once', async () => {
    const config = await cloud.provision('dev-p');
    const { device, logs } = createTestDevice(config, undefined, { syncMode: syncModePeriodic, syncPeriodMs: 1500 });
    const repository = cloud.cloud.context.repository;
    device.emit(telemetryTemplate, telemetryValues(0));
    device.start();
    await waitFor(async () => (await repository.countEvents('dev-p')) === 1, 10_000, 'the first sync');
    // Idle for syncPeriodicIdleMs: it disconnects.
    await waitFor(() => !device.sync.status.connected, 10_000, 'the idle disconnect');
    device.emit(telemetryTemplate, telemetryValues(1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await repository.countEvents('dev-p')).toBe(1);
    // The next period brings it back.
    await waitFor(async () => (await repository.countEvents('dev-p')) === 2, 10_000, 'the periodic sync');
    await waitFor(() => !device.sync.status.connected, 10_000, 'the second idle disconnect');
    device.emit(telemetryTemplate, telemetryValues(2));
    device.sync.syncNow();
    await waitFor(async () => (await repository.countEvents('dev-p')) === 3, 1_400, 'sync now, before the period');
    expect(logs.filter((line) => line.startsWith('sync: disconnected')).length).toBeGreaterThanOrEqual(2);
    device.stop();
  });

  it('[SYNC-32] one owner per key: the device cannot write a cloud key, a desired value for a device key is a reported conflict', async () => {
    const config = await cloud.provision('dev-g');
    const { device } = createTestDevice(config);
    expect(device.state.setBool(led, true)).toBe(stateErrorOwner);
    const conflicts: { key: string; owner: string }[] = [];
    cloud.cloud.context.live.subscribe((update) => {
      if (update.type === 'conflict') conflicts.push({ key: update.key, owner: update.owner });
    });
    device.state.setNumber(batteryMv, 3700);
    device.start();
    await waitFor(() => !device.state.isChanged(batteryMv), 10_000, 'batteryMv reported');
    const repository = cloud.cloud.context.repository;
    expect((await repository.patchDesired('dev-g', 0, { batteryMv: 1 }, Date.now())).outcome).toBe('applied');
    cloud.cloud.context.live.publish({ type: 'desired', deviceId: 'dev-g', desiredVersion: 1, keys: ['batteryMv'] });
    await waitFor(() => conflicts.length === 1, 10_000, 'the conflict report');
    expect(conflicts[0]).toEqual({ key: 'batteryMv', owner: 'device' });
    expect(device.state.getNumber(batteryMv)).toBe(3700);
    expect(cloud.cloud.context.metrics.get('tandem_sync_conflicts_total')).toBe(1);
    device.stop();
  });

  it('[SYNC-14] [SYNC-26] cloud-to-device messages arrive in order, once, and survive a reboot without replay', async () => {
    const config = await cloud.provision('dev-d');
    const repository = cloud.cloud.context.repository;
    for (const n of [1, 2, 3]) await repository.enqueueMessage('dev-d', { n }, 600, Date.now(), 100);
    const first = createTestDevice(config);
    first.device.start();
    await waitFor(() => first.messages.length === 3, 10_000, 'three messages');
    expect(first.messages.map((m) => JSON.parse(m.body))).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await waitFor(async () => (await repository.listMessages('dev-d')).every((m) => m.status === 'acked'), 10_000, 'messages acked');
    first.device.stop();
    // Reboot on the same flash: nothing is delivered again; a new message is.
    const second = createTestDevice(config, first.flash);
    expect(second.device.epoch).toBe(first.device.epoch + 1);
    await repository.enqueueMessage('dev-d', { n: 4 }, 600, Date.now(), 100);
    second.device.start();
    await waitFor(() => second.messages.length === 1, 10_000, 'the fourth message');
    expect(JSON.parse(second.messages[0]!.body)).toEqual({ n: 4 });
    second.device.stop();
  });

  it('[SYNC-24] a reconnect resends unacknowledged events and the cloud stores each once', async () => {
    const config = await cloud.provision('dev-e');
    const repository = cloud.cloud.context.repository;
    const { device } = createTestDevice(config);
    device.start();
    await waitFor(() => device.sync.status.sessionOpen, 10_000, 'session open');
    for (let i = 0; i < 50; i++) device.emit(telemetryTemplate, telemetryValues(i));
    // Cut the connection right away, before the acks can come back: the events go out again.
    device.mqtt.fail(-7);
    for (let i = 50; i < 100; i++) device.emit(telemetryTemplate, telemetryValues(i));
    await waitFor(async () => (await repository.countEvents('dev-e')) === 100 && device.cache.totalCount() === 0, 10_000, '100 events');
    const seqs = (await repository.listEvents('dev-e', { limit: 200 })).map((e) => e.seq);
    expect(new Set(seqs).size).toBe(100);
    device.stop();
  });
});
