// The device MQTT client through the TCP fault proxy, mid-session: chunks split at random points,
// pieces delayed, connections cut after a random number of bytes (often inside a packet). Every
// QoS 1 publish must end up acknowledged and at the cloud, every QoS 1 message from the cloud must
// reach the device: duplicates are allowed (QoS 1 is at least once), losses and corruption are not.
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttErrorWindowFull } from '../../firmware/core/mqtt/mqtt-codes.ts';
import { downlinkTopic, presenceTopic, uplinkTopic } from '../../firmware/protocol/topics.ts';
import { TcpFaultProxy } from '../../hal-mocks/tcp-fault-proxy.ts';
import { startAedes } from './helpers/aedes-broker.ts';
import { startClient, uniqueId, waitFor } from './helpers/client-harness.ts';
import { SeededRandom } from './helpers/seeded-random.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const uplinkCount = 60;
const downlinkCount = 40;

interface FaultProfile {
  cutAfterBytesMin: number;
  cutAfterBytesMax: number;
  payloadPadMax: number;
}

const moderate: FaultProfile = { cutAfterBytesMin: 1500, cutAfterBytesMax: 5000, payloadPadMax: 300 };
/** Cuts every few hundred bytes: most connections die inside a packet. */
const harsh: FaultProfile = { cutAfterBytesMin: 300, cutAfterBytesMax: 1500, payloadPadMax: 100 };

async function runThroughFaults(brokerPort: number, seed: number, profile: FaultProfile): Promise<void> {
  const id = uniqueId('f');
  const random = new SeededRandom(seed);
  const js = await mqtt.connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: uniqueId('cloud'), reconnectPeriod: 0 });
  cleanups.push(() => js.endAsync(true));
  const cloudGot = new Set<string>();
  const corrupt: string[] = [];
  const sent = new Set<string>();
  js.on('message', (_topic, payload) => {
    const text = payload.toString('latin1');
    if (sent.has(text)) cloudGot.add(text);
    else corrupt.push(text);
  });
  await js.subscribeAsync(uplinkTopic(id), { qos: 1 });

  const proxy = await TcpFaultProxy.start({
    targetHost: '127.0.0.1',
    targetPort: brokerPort,
    seed,
    splitChance: 0.5,
    maxDelayMs: 2,
    cutAfterBytesMin: profile.cutAfterBytesMin,
    cutAfterBytesMax: profile.cutAfterBytesMax,
  });
  cleanups.push(() => proxy.close());

  const d = startClient({ host: '127.0.0.1', port: proxy.port, clientId: id, presenceTopic: presenceTopic(id) }, seed, 5);
  cleanups.push(() => d.close());
  let subscribed = false;
  d.events.afterConnect = () => d.client.subscribe(downlinkTopic(id), 1);
  const subscribedOnce = waitFor('first suback', () => d.events.subacks.length > 0, 10000).then(() => {
    subscribed = true;
  });

  // Uplink: publish whenever the window has room.
  const uplink = (async () => {
    for (let i = 0; i < uplinkCount; i++) {
      const payload = `up-${i}-` + 'x'.repeat(random.below(profile.payloadPadMax));
      sent.add(payload);
      for (;;) {
        const result = d.client.publish(uplinkTopic(id), payload, 1, false);
        if (result > 0) break;
        expect(result).toBe(mqttErrorWindowFull);
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
    }
  })();

  // Downlink: the cloud publishes once the device has a subscription in its session.
  await subscribedOnce;
  expect(subscribed).toBe(true);
  for (let i = 0; i < downlinkCount; i++) await js.publishAsync(downlinkTopic(id), `down-${i}`, { qos: 1 });
  await uplink;

  await waitFor('every publish acked', () => d.events.acked.length === uplinkCount && d.client.inFlight() === 0, 15000);
  await waitFor('cloud has every publish', () => cloudGot.size === uplinkCount, 5000);
  const deviceGot = new Set(d.events.messages.filter((m) => m.topic === downlinkTopic(id)).map((m) => m.payload));
  await waitFor('device has every message', () => {
    for (const m of d.events.messages) if (m.topic === downlinkTopic(id)) deviceGot.add(m.payload);
    return deviceGot.size === downlinkCount;
  }, 10000);

  expect(corrupt).toEqual([]);
  expect([...deviceGot].sort()).toEqual(Array.from({ length: downlinkCount }, (_, i) => `down-${i}`).sort());
  expect(new Set(d.events.acked).size).toBe(uplinkCount); // each packet id acked exactly once
  // The faults really happened: several cuts and as many reconnects.
  expect(proxy.cuts).toBeGreaterThanOrEqual(2);
  expect(d.events.connects.length).toBeGreaterThanOrEqual(proxy.cuts);
  console.log(`fault proxy seed ${seed}: ${proxy.connections} connections, ${proxy.cuts} cuts, ${d.events.messages.length} downlink deliveries for ${downlinkCount} messages`);
}

describe('MQTT client through the TCP fault proxy', () => {
  it('loses nothing against Mosquitto while the link is split, delayed and cut [seed 11]', async () => {
    await runThroughFaults(1883, 11, moderate);
  });

  it('loses nothing against Mosquitto when cuts come every few hundred bytes [seed 21]', async () => {
    await runThroughFaults(1883, 21, harsh);
  });

  it('loses nothing against Aedes while the link is split, delayed and cut [seed 12]', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    await runThroughFaults(aedes.port, 12, moderate);
  });

  it('loses nothing against Aedes when cuts come every few hundred bytes [seed 22]', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    await runThroughFaults(aedes.port, 22, harsh);
  });
});
