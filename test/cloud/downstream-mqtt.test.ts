// The MQTT republish route against the Mosquitto on 127.0.0.1:1883: events and state changes on
// `<prefix>/<device>/...` topics, and a broker that is unreachable at first (a forwarder to
// Mosquitto opens later): ingest never waits, and every event arrives once the broker is there.
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDownstreamConfig } from '../../cloud-stub/downstream/config.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import type { EventInput } from '../../cloud-stub/storage/repository.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const mosquitto = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function cloudWith(routesValue: unknown): Promise<RunningCloud> {
  const temp = temporaryDir('tandem-downstream-mqtt-');
  cleanups.push(() => temp.remove());
  const cloud = await startCloud({
    dataDir: temp.dir, mqttPort: 0, httpPort: 0, mqttHost: '127.0.0.1', httpHost: '127.0.0.1', log: () => {},
    session: () => ({ handleUplink: async () => {} }),
    downstreamRoutes: parseDownstreamConfig(routesValue, temp.dir, {}), downstreamPollMs: 50,
  });
  cleanups.push(() => cloud.stop());
  return cloud;
}

async function subscriber(prefix: string): Promise<Array<{ topic: string; body: Record<string, unknown> }>> {
  const received: Array<{ topic: string; body: Record<string, unknown> }> = [];
  const client = await mqtt.connectAsync(mosquitto, { clientId: `tandem-test-${randomBytes(4).toString('hex')}` });
  cleanups.push(() => client.endAsync(true));
  client.on('message', (topic, payload) => received.push({ topic, body: JSON.parse(payload.toString('utf8')) as Record<string, unknown> }));
  await client.subscribeAsync(`${prefix}/#`, { qos: 1 });
  return received;
}

function rows(fromSeq: number, count: number): EventInput[] {
  return Array.from({ length: count }, (_, i) => ({ seq: fromSeq + i, templateId: 'telemetry', ts: 1_750_000_000_000 + i, fields: { n: fromSeq + i } }));
}

describe('MQTT republish route', () => {
  it('republishes events and state changes under the topic prefix', async () => {
    const prefix = `tandem-test-${randomBytes(4).toString('hex')}`;
    const received = await subscriber(prefix);
    const cloud = await cloudWith({ routes: { bus: { type: 'mqtt', url: mosquitto, topicPrefix: prefix } } });
    await cloud.context.ingest.ingest('dev-m', 1, rows(1, 30));
    await cloud.context.repository.applyReported('dev-m', [{ key: 'fw', value: '2.0', version: 1, ts: 5 }]);
    cloud.downstream!.notify();
    await waitFor(() => received.length === 31, 8000, '31 messages');
    const events = received.filter((m) => m.topic === `${prefix}/dev-m/events/telemetry`);
    expect(events.map((m) => m.body.seq).sort((a, b) => (a as number) - (b as number))).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(received.filter((m) => m.topic === `${prefix}/dev-m/state/reported`).map((m) => m.body)).toEqual([
      expect.objectContaining({ deviceId: 'dev-m', key: 'fw', value: '2.0', version: 1 }),
    ]);
  });

  it('a broker that is unreachable at first delays only its route; nothing is lost', async () => {
    const placeholder: Server = createServer();
    await new Promise<void>((resolve) => placeholder.listen(0, '127.0.0.1', resolve));
    const port = (placeholder.address() as { port: number }).port;
    await new Promise<void>((resolve) => placeholder.close(() => resolve()));

    const prefix = `tandem-test-${randomBytes(4).toString('hex')}`;
    const received = await subscriber(prefix);
    const cloud = await cloudWith({ routes: { bus: { type: 'mqtt', url: `mqtt://127.0.0.1:${port}`, topicPrefix: prefix, backoffMs: 20, backoffMsMax: 200, streams: ['events'] } } });
    for (let batch = 0; batch < 4; batch++) {
      const started = performance.now();
      expect((await cloud.context.ingest.ingest('dev-r', 1, rows(batch * 50 + 1, 50))).outcome).toBe('committed');
      expect(performance.now() - started).toBeLessThan(1000);
    }
    await waitFor(async () => (await cloud.downstream!.status())[0]!.failures >= 2, 5000, 'failures');
    expect((await cloud.downstream!.status())[0]!.lag.events).toBe(200);

    const sockets = new Set<Socket>();
    const forwarder = createServer((client) => {
      const upstream = connect(1883, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(port, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => { for (const s of sockets) s.destroy(); forwarder.close(() => resolve()); }));
    await waitFor(async () => (await cloud.downstream!.status())[0]!.lag.events === 0, 8000, 'delivery after recovery');
    await waitFor(() => new Set(received.map((m) => m.body.seq)).size === 200, 3000, 'all 200 received');
    expect([...new Set(received.map((m) => m.body.seq as number))].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });
});
