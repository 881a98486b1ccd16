// bench sync: 1,000 events cached while offline, then the device connects and drains them to the
// cloud stub (embedded broker, SQLite, acknowledgements after commit) on loopback. Counts MQTT
// publishes, bytes on the wire and the time until every event is acknowledged. The second run
// does the same through the durable event cache: the events are cached on flash, the device
// reboots, and they go out as the earlier boot's backlog [SYNC-33].
import { FlashSimulator } from '../hal-mocks/flash-simulator.ts';
import { NodeNetwork } from '../hal-mocks/node-network.ts';
import { wireFrameBytesMax } from '../firmware/protocol/limits.ts';
import { telemetryTemplate } from '../firmware/protocol/templates/index.ts';
import { referenceTelemetryStream } from '../test/protocol/streams.ts';
import { CountingNetwork, createTestDevice, startTestCloud, waitFor, type TestCloud } from '../test/sync/helpers.ts';
import { printTable, type Benchmark } from './results.ts';

export const summary = '1,000 offline events drained on reconnect (and after a reboot, from flash): publishes, wire bytes, time to all acked';

interface Drain {
  events: number;
  publishes: number;
  publishBound: number;
  wireBytes: number;
  eventBytes: number;
  msToAcked: number;
  bytesReceived: number;
}

async function drain(cloud: TestCloud, deviceId: string, count: number, throughReboot: boolean): Promise<Drain> {
  const config = await cloud.provision(deviceId);
  const network = new CountingNetwork(new NodeNetwork());
  // The default 4 KiB ring holds about 240 reference events; the RAM run caches 1,000 in 32 KiB,
  // the durable run in the default ring plus a 128 KiB flash area.
  const eventFlash = throughReboot ? new FlashSimulator({ sectorSize: 4096, sectorCount: 32 }) : null;
  const options = throughReboot ? { eventFlash } : { cacheBytes: 32 * 1024 };
  // A reconnect: the device met its cloud once (so the broker keeps its subscription), went
  // offline, and cached events meanwhile. Its flash carries the state over the restart.
  const first = createTestDevice(config, undefined, options);
  first.device.start();
  await waitFor(() => first.device.sync.status.sessionOpen && first.device.state.changedCount() === 0, 20_000, 'first session');
  if (throughReboot) first.device.mqtt.stop();
  const cacheOn = throughReboot ? first.device : null;
  const stream = referenceTelemetryStream(1, count);
  const emitAll = (emit: (values: number[]) => number): void => {
    for (const record of stream) if (emit([record.ts, record.temp, record.hum, record.batt]) < 0) throw new Error('cache refused an event');
  };
  if (cacheOn !== null) emitAll((values) => cacheOn.emit(telemetryTemplate, values));
  first.device.stop();
  const { device } = createTestDevice(config, first.flash, options, network);
  if (cacheOn === null) emitAll((values) => device.emit(telemetryTemplate, values));
  else if (device.spill?.backlogCount() !== count) throw new Error(`flash holds ${device.spill?.backlogCount()} events after the reboot, expected ${count}`);
  const started = performance.now();
  device.start();
  await waitFor(() => device.cache.totalCount() === 0 && (device.spill === null || device.spill.backlogEpoch() === 0), 20_000, 'every event acknowledged');
  const msToAcked = performance.now() - started;
  const stored = await cloud.cloud.context.repository.countEvents(deviceId);
  if (stored !== count) throw new Error(`cloud stored ${stored} events, expected ${count}`);
  const status = device.sync.status;
  const eventBytes = status.frameBytesSent;
  const wireBytes = network.bytesWritten;
  const bytesReceived = network.bytesReceived;
  device.stop();
  return {
    events: count, publishes: status.eventMessagesSent, publishBound: Math.ceil(eventBytes / wireFrameBytesMax), wireBytes,
    eventBytes, msToAcked: Math.round(msToAcked), bytesReceived,
  };
}

export const run: Benchmark['run'] = async ({ quick }) => {
  const count = quick ? 200 : 1000;
  const cloud = await startTestCloud();
  try {
    const ram = await drain(cloud, 'bench-sync', count, false);
    // Device ids of one length, so both runs put the same topic bytes on the wire.
    const flash = await drain(cloud, 'bench-boot', count, true);
    const rows = (name: string, pick: (d: Drain) => string | number, target: (d: Drain) => string): (string | number)[] => [name, pick(ram), pick(flash), target(ram)];
    printTable(`sync: ${count} offline events, reconnect and drain (loopback, device core + cloud stub)`, ['figure', 'RAM cache', 'flash, after a reboot', 'target'], [
      rows('event frame bytes', (d) => d.eventBytes, () => ''),
      rows('bytes per event', (d) => (d.eventBytes / d.events).toFixed(2), () => ''),
      rows('MQTT publishes of events', (d) => d.publishes, (d) => `<= ${d.publishBound}`),
      rows('device bytes on the wire (all)', (d) => d.wireBytes, (d) => `<= ${Math.floor(d.eventBytes * 1.2)}`),
      rows('wire / event bytes', (d) => (d.wireBytes / d.eventBytes).toFixed(3), () => '<= 1.2'),
      rows('bytes received by the device', (d) => d.bytesReceived, () => ''),
      rows('ms until all acknowledged', (d) => d.msToAcked, () => '<= 2000'),
    ]);
    return { offline1000: ram, afterReboot1000: flash };
  } finally {
    await cloud.close();
  }
};
