// The sync session under a damaged link and against a third-party broker: a seeded TCP proxy
// splits, delays and cuts the device's connection mid-session while events, device-owned state and
// cloud-owned state keep changing; at the end nothing is lost, nothing is stored twice, and device
// and cloud agree on every key. Then the same session through Mosquitto (127.0.0.1:1883).
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../firmware/protocol/state-template.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { createDefaultRegistry, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { TcpFaultProxy } from '../../hal-mocks/tcp-fault-proxy.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { syncSessionFactory } from '../../cloud-stub/sync-session.ts';
import type { CommittedBatch } from '../../cloud-stub/ingest.ts';
import { temporaryDir } from '../cloud/helpers.ts';
import { createTestDevice, startTestCloud, telemetryValues, waitFor, type TestCloud } from './helpers.ts';

const led = keyIdOf(demoStateTemplate, 'led');
const interval = keyIdOf(demoStateTemplate, 'reportIntervalSec');
const batteryMv = keyIdOf(demoStateTemplate, 'batteryMv');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe('sync session through a faulty link', () => {
  let cloud: TestCloud | null = null;
  let proxy: TcpFaultProxy | null = null;
  afterEach(async () => {
    await proxy?.close();
    await cloud?.close();
    proxy = null;
    cloud = null;
  });

  for (const seed of [11, 23]) {
    it(`[SYNC-24] seed ${seed}: cuts, splits and delays lose no event, store none twice, and state converges`, async () => {
      cloud = await startTestCloud();
      const delivered: number[] = [];
      cloud.cloud.context.live.subscribe((update) => {
        if (update.type === 'event' && update.templateId === 'telemetry') delivered.push(update.seq);
      });
      proxy = await TcpFaultProxy.start({
        targetHost: '127.0.0.1', targetPort: cloud.cloud.mqttPort!, seed,
        splitChance: 0.5, maxDelayMs: 5, cutAfterBytesMin: 150, cutAfterBytesMax: 900,
      });
      const config = { ...(await cloud.provision(`fault-${seed}`)), mqttPort: proxy.port };
      const { device, logs } = createTestDevice(config);
      const repository = cloud.cloud.context.repository;
      device.start();
      let desiredVersion = 0;
      let emitted = 0;
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 10; i++) if (device.emit(telemetryTemplate, telemetryValues(emitted)) > 0) emitted++;
        device.state.setNumber(batteryMv, 3600 + round);
        if (round % 4 === 0) {
          const result = await repository.patchDesired(config.deviceId, desiredVersion, { led: round % 8 === 0, reportIntervalSec: 10 + round }, Date.now());
          if (result.outcome === 'applied') {
            desiredVersion = result.desiredVersion;
            cloud.cloud.context.live.publish({ type: 'desired', deviceId: config.deviceId, desiredVersion, keys: ['led', 'reportIntervalSec'] });
          }
        }
        await sleep(40);
      }
      // Heal the link and let the device finish.
      proxy.options.cutAfterBytesMin = undefined;
      proxy.options.cutAfterBytesMax = undefined;
      proxy.cutAll();
      await waitFor(async () => device.cache.totalCount() === 0 && (await repository.countEvents(config.deviceId)) >= emitted, 20_000, 'all events delivered');
      await waitFor(() => device.state.changedCount() === 0 && device.state.version(led) === desiredVersion, 20_000, 'state converged');
      const stored = await repository.listEvents(config.deviceId, { limit: 1000 });
      const seqs = stored.filter((e) => e.templateId === 'telemetry').map((e) => e.seq);
      // The link really was cut, more than once, mid-session.
      expect(logs.filter((line) => line.startsWith('sync: disconnected')).length).toBeGreaterThan(1);
      expect(device.cache.droppedCount).toBe(0);
      expect(seqs.length).toBe(emitted);
      expect(new Set(seqs).size).toBe(emitted);
      // Downstream (what the ingest path hands on after commit) saw each event exactly once.
      expect(delivered.length).toBe(emitted);
      expect(new Set(delivered).size).toBe(emitted);
      const state = await repository.getState(config.deviceId);
      const byKey = new Map(state!.entries.map((e) => [e.key, e]));
      expect(byKey.get('batteryMv')?.reportedValue).toBe(device.state.getNumber(batteryMv));
      expect(byKey.get('led')?.desiredValue).toBe(device.state.getBool(led));
      expect(byKey.get('reportIntervalSec')?.desiredValue).toBe(device.state.getNumber(interval));
      device.stop();
    });
  }
});

describe('sync session through Mosquitto (external broker, shared subscription)', () => {
  let cloud: RunningCloud | null = null;
  const temp = temporaryDir('tandem-mosq-');
  afterEach(async () => {
    await cloud?.stop();
    cloud = null;
  });

  it('[SYNC-22] delivers events and state through a third-party broker', async () => {
    const committed: CommittedBatch[] = [];
    cloud = await startCloud({
      dataDir: temp.dir, mqttUrl: 'mqtt://127.0.0.1:1883', shareGroup: `sync${randomBytes(3).toString('hex')}`,
      httpPort: 0, httpHost: '127.0.0.1', log: () => {},
      session: syncSessionFactory({ templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate] }),
    });
    cloud.context.live.subscribe((update) => {
      if (update.type === 'event') committed.push({ deviceId: update.deviceId, epoch: update.epoch, rows: [], committedAtMs: 0 });
    });
    // Mosquitto here lets anyone in: the cloud's registry is not asked, so any secret works.
    const deviceId = `mosq-${randomBytes(4).toString('hex')}`;
    const { device } = createTestDevice({ deviceId, secret: 'unused', mqttHost: '127.0.0.1', mqttPort: 1883, tls: false });
    for (let i = 0; i < 120; i++) device.emit(telemetryTemplate, telemetryValues(i));
    device.state.setNumber(batteryMv, 3650);
    device.start();
    const repository = cloud.context.repository;
    await waitFor(async () => device.cache.totalCount() === 0 && (await repository.countEvents(deviceId)) === 120, 15_000, 'events through Mosquitto');
    await waitFor(() => device.state.changedCount() === 0, 15_000, 'state acknowledged');
    expect(committed.length).toBe(120);
    device.stop();
  });
});
