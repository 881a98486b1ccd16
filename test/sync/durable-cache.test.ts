// The durable event cache end to end (issue 9): a device core with the flash tier on, against the
// cloud stub over real TCP. Events cached before a reboot are delivered after it under the boot
// epoch they were created in [SYNC-33]; a power cut loses only what was not yet programmed.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { syncModePeriodic } from '../../firmware/core/sync-engine.ts';
import { syncFlashFillPercentTrigger } from '../../firmware/protocol/limits.ts';
import { defineTemplate } from '../../firmware/protocol/template.ts';
import { telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import type { Network } from '../../firmware/hal/socket.ts';
import { FlashSimulator } from '../../hal-mocks/flash-simulator.ts';
import { NodeNetwork } from '../../hal-mocks/node-network.ts';
import { createTestDevice, startTestCloud, telemetryValues, waitFor, type TestCloud } from './helpers.ts';

/** A firmware update's telemetry: the same id, a field more (so another layout and hash). */
const telemetryV2 = defineTemplate({
  name: 'telemetry',
  id: 1,
  version: 2,
  fields: [
    { name: 'ts', type: 'timestamp', resolutionMs: 1000 },
    { name: 'temp', type: 'fixed', resolution: 0.1, min: -40, max: 125, unit: 'degC' },
    { name: 'hum', type: 'uint', min: 0, max: 100, unit: '%' },
    { name: 'batt', type: 'uint', min: 0, max: 6000, unit: 'mV' },
    { name: 'co2', type: 'uint', min: 0, max: 10000, unit: 'ppm' },
  ],
});

/** 128 KiB: the default area on a board. */
function eventArea(): FlashSimulator {
  return new FlashSimulator({ sectorSize: 4096, sectorCount: 32, seed: 3 });
}

describe('durable event cache: device core with the flash tier against the cloud stub', () => {
  let cloud: TestCloud;
  beforeEach(async () => {
    cloud = await startTestCloud({ templates: [telemetryV2] });
  });
  afterEach(async () => {
    await cloud.close();
  });

  async function eventsByEpoch(deviceId: string): Promise<Map<number, { seq: number; fields: unknown }[]>> {
    const byEpoch = new Map<number, { seq: number; fields: unknown }[]>();
    for (const event of await cloud.cloud.context.repository.listEvents(deviceId, { limit: 100_000 })) {
      const list = byEpoch.get(event.epoch) ?? [];
      list.push({ seq: event.seq, fields: event.fields });
      byEpoch.set(event.epoch, list);
    }
    for (const list of byEpoch.values()) list.sort((a, b) => a.seq - b.seq);
    return byEpoch;
  }

  it('[SYNC-33] 3,000 events cached offline survive a planned reboot and arrive under their own epoch, each once', async () => {
    const config = await cloud.provision('dur-a');
    const area = eventArea();
    const first = createTestDevice(config, undefined, { eventFlash: area });
    for (let i = 0; i < 3000; i++) expect(first.device.emit(telemetryTemplate, telemetryValues(i))).toBe(i + 1);
    // The RAM ring (4 KiB) could not hold them: the tier took the oldest, nothing was dropped.
    expect(first.device.cache.droppedCount).toBe(0);
    expect(first.device.cache.totalCount()).toBe(3000);
    first.device.persist();
    expect(first.device.spill!.pendingCount()).toBe(0);
    expect(first.device.cache.count).toBe(0);

    const second = createTestDevice(config, first.flash, { eventFlash: area });
    expect(second.device.epoch).toBe(first.device.epoch + 1);
    const spill = second.device.spill!;
    expect(spill.backlogEpoch()).toBe(first.device.epoch);
    expect(spill.backlogCount()).toBe(3000);
    expect(second.logs.some((line) => line.includes('3000 unacknowledged events of earlier boots'))).toBe(true);
    for (let i = 0; i < 5; i++) expect(second.device.emit(telemetryTemplate, telemetryValues(10_000 + i))).toBe(i + 1);
    second.device.start();
    const repository = cloud.cloud.context.repository;
    await waitFor(async () => (await repository.countEvents('dur-a')) === 3005 && spill.backlogEpoch() === 0 && second.device.cache.totalCount() === 0, 20_000, 'both epochs delivered and purged');
    const byEpoch = await eventsByEpoch('dur-a');
    const earlier = byEpoch.get(first.device.epoch)!;
    expect(earlier.map((e) => e.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    const [ts, temp, hum, batt] = telemetryValues(2718);
    expect(earlier[2718]!.fields).toEqual({ ts, temp, hum, batt });
    expect(byEpoch.get(second.device.epoch)!.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    // Frames, not one publish per event: a few hundred events per EVENTS message.
    expect(second.device.sync.status.eventMessagesSent).toBeLessThan(40);
    // The emptied segments were erased; a third boot finds nothing to send again.
    second.device.stop();
    const third = createTestDevice(config, first.flash, { eventFlash: area });
    expect(third.device.spill!.backlogCount()).toBe(0);
    expect(third.device.cache.totalCount()).toBe(0);
  });

  it('a power cut loses only the events not yet programmed; the rest arrive after the reboot', async () => {
    const config = await cloud.provision('dur-b');
    const area = eventArea();
    const first = createTestDevice(config, undefined, { eventFlash: area });
    for (let i = 0; i < 1200; i++) {
      first.device.emit(telemetryTemplate, telemetryValues(i));
      // The tick loop moves the ring's events to the tier as it runs (not started: called here).
      if (i % 10 === 9) first.device.tick();
    }
    const spill = first.device.spill!;
    // Not yet on flash: the chunk buffer (at most spillFlushDelayMs old) and the ring.
    const volatile = spill.pendingCount() + first.device.cache.count;
    expect(volatile).toBeGreaterThan(0);
    expect(volatile).toBeLessThan(60);
    const durable = 1200 - volatile;
    // Power goes: no stop(), no persist(); the next boot finds the flash as it is.
    const second = createTestDevice(config, first.flash, { eventFlash: area });
    expect(second.device.spill!.backlogCount()).toBe(durable);
    second.device.start();
    const repository = cloud.cloud.context.repository;
    await waitFor(async () => second.device.spill!.backlogEpoch() === 0 && (await repository.countEvents('dur-b')) === durable, 20_000, 'the durable events delivered');
    const earlier = (await eventsByEpoch('dur-b')).get(first.device.epoch)!;
    expect(earlier.map((e) => e.seq)).toEqual(Array.from({ length: durable }, (_, i) => i + 1));
    second.device.stop();
  });

  it('a reboot in the middle of delivering the backlog leaves nothing lost and nothing twice', async () => {
    const config = await cloud.provision('dur-c');
    const area = eventArea();
    const repository = cloud.cloud.context.repository;
    const first = createTestDevice(config, undefined, { eventFlash: area });
    for (let i = 0; i < 2500; i++) first.device.emit(telemetryTemplate, telemetryValues(i));
    first.device.persist();
    // The link freezes (nothing more arrives) right after the first backlog ack is applied, and
    // the device reboots there: part of the backlog is acknowledged on flash, the rest is not.
    let frozen = false;
    const base = new NodeNetwork();
    const freezing: Network = {
      connect: (host, port, secure, handlers) => base.connect(host, port, secure, {
        onConnect: () => handlers.onConnect(),
        onData: (data) => (frozen ? undefined : handlers.onData(data)),
        onClose: (hadError) => handlers.onClose(hadError),
      }),
    };
    const second = createTestDevice(config, first.flash, { eventFlash: area }, freezing);
    const spill = second.device.spill!;
    // Only the first 1,000 are offered for sending before the freeze, so however many EVENTS
    // messages the cloud commits before its first ack arrives, part of the backlog stays.
    const readBacklog = spill.readBacklog.bind(spill);
    spill.readBacklog = (afterSeq, into, offset, maxBytes, batch) => (!frozen && afterSeq >= 1000 ? 0 : readBacklog(afterSeq, into, offset, maxBytes, batch));
    const ackBacklog = spill.ackBacklog.bind(spill);
    spill.ackBacklog = (epoch, seq) => {
      const purged = ackBacklog(epoch, seq);
      frozen = true;
      return purged;
    };
    for (let i = 0; i < 300; i++) second.device.emit(telemetryTemplate, telemetryValues(5000 + i));
    second.device.start();
    await waitFor(() => frozen, 20_000, 'the first backlog ack');
    const acknowledged = 2500 - spill.backlogCount();
    expect(acknowledged).toBeGreaterThan(0);
    expect(acknowledged).toBeLessThan(2500);
    second.device.stop();
    const third = createTestDevice(config, first.flash, { eventFlash: area });
    const left = third.device.spill!;
    // What the first boot's backlog had not had acknowledged (the acks are on flash), then the
    // second boot's events.
    expect(left.backlogEpoch()).toBe(first.device.epoch);
    expect(left.backlogCount()).toBe(2500 - acknowledged);
    third.device.start();
    await waitFor(async () => left.backlogEpoch() === 0 && (await repository.countEvents('dur-c')) === 2800, 20_000, 'everything delivered');
    const byEpoch = await eventsByEpoch('dur-c');
    expect(byEpoch.get(first.device.epoch)!.map((e) => e.seq)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(byEpoch.get(second.device.epoch)!.map((e) => e.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(byEpoch.has(third.device.epoch)).toBe(false);
    third.device.stop();
  });

  it('periodic sync connects before its period once the flash area is 3/4 full', async () => {
    const config = await cloud.provision('dur-e');
    const area = new FlashSimulator({ sectorSize: 4096, sectorCount: 8, seed: 4 });
    const { device } = createTestDevice(config, undefined, { eventFlash: area, syncMode: syncModePeriodic, syncPeriodMs: 3_600_000 });
    const repository = cloud.cloud.context.repository;
    device.start();
    await waitFor(() => device.sync.status.sessionOpen, 10_000, 'the first session');
    await waitFor(() => !device.sync.status.connected, 10_000, 'the idle disconnect');
    // An hour to the next period: events go to flash until 6 of its 8 segments hold some.
    let emitted = 0;
    while (device.spill!.fillPercent() < syncFlashFillPercentTrigger) {
      device.emit(telemetryTemplate, telemetryValues(emitted++));
      if (emitted % 50 === 0) device.tick();
    }
    expect(device.cache.droppedCount).toBe(0);
    await waitFor(async () => (await repository.countEvents('dur-e')) === emitted, 10_000, 'the early sync');
    device.stop();
  });

  it('a worn-out flash area is reported once and the events still go out from RAM', async () => {
    const config = await cloud.provision('dur-f');
    const area = new FlashSimulator({ sectorSize: 4096, sectorCount: 4, seed: 5 });
    // Every sector has used up its erase cycles: nothing can be programmed any more.
    for (let sector = 0; sector < 4; sector++) {
      area.wearOut(sector, 0);
      area.erase(sector);
    }
    const { device, logs } = createTestDevice(config, undefined, { eventFlash: area, eventFlashFlushMs: 0 });
    for (let i = 0; i < 50; i++) device.emit(telemetryTemplate, telemetryValues(i));
    for (let i = 0; i < 5; i++) device.tick();
    // Said when sectors are found failing, not on every tick.
    const said = logs.filter((line) => line.startsWith('events: '));
    expect(said.length).toBeGreaterThanOrEqual(1);
    expect(said.length).toBeLessThanOrEqual(4);
    expect(said[said.length - 1]).toBe("events: 4 of the flash area's sectors failing");
    for (let i = 0; i < 5; i++) device.tick();
    expect(logs.filter((line) => line.startsWith('events: '))).toEqual(said);
    expect(device.cache.totalCount()).toBe(50);
    expect(device.cache.droppedCount).toBe(0);
    device.start();
    await waitFor(async () => (await cloud.cloud.context.repository.countEvents('dur-f')) === 50 && device.cache.totalCount() === 0, 10_000, 'the events from RAM');
    device.stop();
  });

  it('[SYNC-9] a state area wiped under a kept event area: the boot epoch moves past the one on flash', async () => {
    const config = await cloud.provision('dur-g');
    const area = eventArea();
    const first = createTestDevice(config, undefined, { eventFlash: area });
    for (let i = 0; i < 100; i++) first.device.emit(telemetryTemplate, telemetryValues(i));
    first.device.persist();
    expect(first.device.epoch).toBe(1);
    // A fresh state area: its epoch counter starts again, the event area remembers epoch 1.
    const second = createTestDevice(config, new FlashSimulator({ sectorCount: 4, seed: 9 }), { eventFlash: area });
    expect(second.device.epoch).toBe(2);
    expect(second.logs).toContain('events: boot epoch 1 was used before; moving past 1');
    expect(second.device.spill!.backlogCount()).toBe(100);
    for (let i = 0; i < 10; i++) second.device.emit(telemetryTemplate, telemetryValues(1000 + i));
    second.device.start();
    await waitFor(async () => (await cloud.cloud.context.repository.countEvents('dur-g')) === 110, 10_000, 'both boots\' events, none taken for a replay');
    const byEpoch = await eventsByEpoch('dur-g');
    expect(byEpoch.get(1)!.length).toBe(100);
    expect(byEpoch.get(2)!.map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    second.device.stop();
  });

  it('online, events the cloud acknowledges within the flush delay never touch flash', async () => {
    const config = await cloud.provision('dur-h');
    const area = eventArea();
    // A 5 s delay: acks on a loaded CI machine take well under that.
    const { device } = createTestDevice(config, undefined, { eventFlash: area, eventFlashFlushMs: 5000 });
    device.start();
    await waitFor(() => device.sync.status.sessionOpen, 10_000, 'session open');
    for (let i = 0; i < 100; i++) {
      device.emit(telemetryTemplate, telemetryValues(i));
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await waitFor(async () => (await cloud.cloud.context.repository.countEvents('dur-h')) === 100 && device.cache.totalCount() === 0, 10_000, 'all acknowledged');
    expect(area.bytesProgrammed).toBe(0);
    expect(area.bytesErased).toBe(0);
    // The link goes: what is emitted now goes to the tier at the next tick.
    device.mqtt.stop();
    await waitFor(() => !device.sync.status.sessionOpen, 5_000, 'the session closed');
    for (let i = 100; i < 110; i++) device.emit(telemetryTemplate, telemetryValues(i));
    await waitFor(() => device.cache.count === 0 && device.spill!.count() === 10, 5_000, 'the events in the tier');
    device.stop();
    expect(area.bytesProgrammed).toBeGreaterThan(0);
  });

  it('[SYNC-33] the cloud refuses EVENTS of an epoch newer than the session', async () => {
    const config = await cloud.provision('dur-d');
    const { device, logs } = createTestDevice(config, undefined, { eventFlash: eventArea() });
    device.start();
    await waitFor(() => device.sync.status.sessionOpen, 10_000, 'session open');
    // A forged message from the device's own connection: epoch + 1, seq 1, no frames needed.
    device.mqtt.publish(`t/${config.deviceId}/u`, new Uint8Array([0x02, device.epoch + 1, 1]), 1, false);
    await waitFor(() => logs.some((line) => line.includes(`EVENTS of epoch ${device.epoch + 1} in a session of epoch ${device.epoch}`)), 10_000, 'the refusal');
    device.stop();
  });

  it('[SPILL-7] after a firmware update that changed a template, events cached under the old one are dropped and reported, never sent under the new layout', async () => {
    const config = await cloud.provision('dur-e');
    const area = eventArea();
    const first = createTestDevice(config, undefined, { eventFlash: area });
    for (let i = 0; i < 400; i++) first.device.emit(telemetryTemplate, telemetryValues(i));
    first.device.persist();
    expect(first.device.spill!.count()).toBe(400);

    // The new firmware emits telemetry v2 under the same id 1.
    const second = createTestDevice(config, first.flash, { eventFlash: area, templates: [telemetryV2] });
    expect(second.device.spill!.backlogCount()).toBe(0);
    expect(second.logs.some((line) => line.includes('400 events on flash were cached under other event templates'))).toBe(true);
    for (let i = 0; i < 3; i++) expect(second.device.emit(telemetryV2, [...telemetryValues(i), 400 + i])).toBeGreaterThan(0);
    second.device.start();
    const repository = cloud.cloud.context.repository;
    // The 3 new events and the report of the 400 dropped ones (it takes the first seq of the boot).
    await waitFor(async () => (await repository.countEvents('dur-e')) === 4 && second.device.cache.totalCount() === 0, 10_000, 'the new events and the drop report');
    const stored = await repository.listEvents('dur-e', { limit: 100 });
    expect(stored.every((event) => event.epoch === second.device.epoch)).toBe(true);
    const report = stored.find((event) => event.templateId === 'events-dropped');
    expect(report?.fields).toMatchObject({ dropped: 400 });
    const readings = stored.filter((event) => event.templateId === 'telemetry').sort((a, b) => a.seq - b.seq);
    expect(readings.map((event) => (event.fields as { co2: number }).co2)).toEqual([400, 401, 402]);
    second.device.stop();
    // A third boot of the new firmware finds nothing more to send or to report.
    const third = createTestDevice(config, first.flash, { eventFlash: area, templates: [telemetryV2] });
    expect(third.device.spill!.heldCount()).toBe(0);
    expect(third.device.cache.droppedCount).toBe(0);
  });
});
