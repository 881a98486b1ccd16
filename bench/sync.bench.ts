// bench sync: 1,000 events cached while offline, then the device connects and drains them to the
// cloud stub (embedded broker, SQLite, acknowledgements after commit) on loopback. Counts MQTT
// publishes, bytes on the wire and the time until every event is acknowledged.
import { NodeNetwork } from '../hal-mocks/node-network.ts';
import { wireFrameBytesMax } from '../firmware/protocol/limits.ts';
import { telemetryTemplate } from '../firmware/protocol/templates/index.ts';
import { referenceTelemetryStream } from '../test/protocol/streams.ts';
import { CountingNetwork, createTestDevice, startTestCloud, waitFor } from '../test/sync/helpers.ts';
import { printTable, type Benchmark } from './results.ts';

export const summary = '1,000 offline events drained on reconnect: publishes, wire bytes, time to all acked';

export const run: Benchmark['run'] = async ({ quick }) => {
  const count = quick ? 200 : 1000;
  const cloud = await startTestCloud();
  try {
    const config = await cloud.provision('bench-sync');
    const network = new CountingNetwork(new NodeNetwork());
    // The default 4 KiB ring holds about 240 reference events; this run caches 1,000.
    const options = { cacheBytes: 32 * 1024 };
    // A reconnect: the device met its cloud once (so the broker keeps its subscription), went
    // offline, and cached events meanwhile. Its flash carries the state over the restart.
    const first = createTestDevice(config, undefined, options);
    first.device.start();
    await waitFor(() => first.device.sync.status.sessionOpen && first.device.state.changedCount() === 0, 20_000, 'first session');
    first.device.stop();
    const { device } = createTestDevice(config, first.flash, options, network);
    const stream = referenceTelemetryStream(1, count);
    for (const record of stream) {
      if (device.emit(telemetryTemplate, [record.ts, record.temp, record.hum, record.batt]) < 0) throw new Error('cache refused an event');
    }
    const started = performance.now();
    device.start();
    await waitFor(async () => device.cache.totalCount() === 0, 20_000, 'every event acknowledged');
    const msToAcked = performance.now() - started;
    const stored = await cloud.cloud.context.repository.countEvents('bench-sync');
    if (stored !== count) throw new Error(`cloud stored ${stored} events, expected ${count}`);
    const status = device.sync.status;
    const eventBytes = status.frameBytesSent;
    const publishes = status.eventMessagesSent;
    const publishBound = Math.ceil(eventBytes / wireFrameBytesMax);
    const wireBytes = network.bytesWritten;
    device.stop();
    printTable(`sync: ${count} offline events, reconnect and drain (loopback, device core + cloud stub)`, ['figure', 'value', 'target'], [
      ['event frame bytes', eventBytes, ''],
      ['bytes per event', (eventBytes / count).toFixed(2), ''],
      ['MQTT publishes of events', publishes, `<= ${publishBound}`],
      ['device bytes on the wire (all)', wireBytes, `<= ${Math.floor(eventBytes * 1.2)}`],
      ['wire / event bytes', (wireBytes / eventBytes).toFixed(3), '<= 1.2'],
      ['bytes received by the device', network.bytesReceived, ''],
      ['ms until all acknowledged', msToAcked.toFixed(0), '<= 2000'],
    ]);
    return { offline1000: { events: count, publishes, publishBound, wireBytes, eventBytes, msToAcked: Math.round(msToAcked), bytesReceived: network.bytesReceived } };
  } finally {
    await cloud.close();
  }
};
