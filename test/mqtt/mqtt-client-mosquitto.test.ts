// The device MQTT client against the real Mosquitto on 127.0.0.1:1883 over real TCP, with MQTT.js
// as the cloud side: subscribe, QoS 1 publish acked, messages in, the presence Last Will when the
// socket dies, and a persistent session delivering QoS 1 messages queued while the device was off.
import mqtt, { type MqttClient as JsClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { mqttErrorNotConnected, mqttErrorWindowFull } from '../../firmware/core/mqtt/mqtt-codes.ts';
import { mqttInFlightMessagesMax } from '../../firmware/protocol/limits.ts';
import { downlinkTopic, presenceTopic, uplinkTopic } from '../../firmware/protocol/topics.ts';
import { TcpFaultProxy } from '../../hal-mocks/tcp-fault-proxy.ts';
import { startClient, uniqueId, waitFor, type Harness } from './helpers/client-harness.ts';

const host = '127.0.0.1';
const port = 1883;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function cloud(): Promise<{ js: JsClient; received: Array<{ topic: string; payload: string; retain: boolean }> }> {
  const js = await mqtt.connectAsync(`mqtt://${host}:${port}`, { clientId: uniqueId('cloud'), reconnectPeriod: 0 });
  const received: Array<{ topic: string; payload: string; retain: boolean }> = [];
  js.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString('latin1'), retain: packet.retain }));
  cleanups.push(() => js.endAsync(true));
  return { js, received };
}

function device(deviceId: string, extra: { port?: number } = {}): Harness {
  const harness = startClient({ host, port, clientId: deviceId, presenceTopic: presenceTopic(deviceId), ...extra });
  cleanups.push(() => harness.close());
  return harness;
}

describe('MQTT client against Mosquitto', () => {
  it('connects, subscribes, gets QoS 1 publishes acked and receives what MQTT.js publishes', async () => {
    const id = uniqueId('d');
    const { js, received } = await cloud();
    await js.subscribeAsync(uplinkTopic(id), { qos: 1 });
    const d = device(id);
    await waitFor('connect', () => d.events.connects.length === 1);
    const subscribeId = d.client.subscribe(downlinkTopic(id), 1);
    expect(subscribeId).toBeGreaterThan(0);
    await waitFor('suback', () => d.events.subacks.length === 1);
    expect(d.events.subacks[0]).toEqual({ packetId: subscribeId, grantedQos: 1 });

    const binary = new Uint8Array(300);
    for (let i = 0; i < binary.length; i++) binary[i] = (i * 7) & 255;
    const ids = [d.client.publish(uplinkTopic(id), 'first', 1, false), d.client.publish(uplinkTopic(id), binary, 1, false)];
    expect(d.client.publish(uplinkTopic(id), 'qos0', 0, false)).toBe(0);
    await waitFor('acks', () => d.events.acked.length === 2);
    expect(d.events.acked.sort()).toEqual(ids.sort());
    await waitFor('cloud receives 3', () => received.length === 3);
    expect(received.map((m) => m.payload)).toEqual(['first', Buffer.from(binary).toString('latin1'), 'qos0']);

    await js.publishAsync(downlinkTopic(id), Buffer.from([0, 255, 1, 2]), { qos: 1 });
    await js.publishAsync(downlinkTopic(id), 'hello', { qos: 0 });
    await waitFor('device receives 2', () => d.events.messages.length === 2);
    expect(d.events.messages).toEqual([
      { topic: downlinkTopic(id), payload: '\x00\xff\x01\x02' },
      { topic: downlinkTopic(id), payload: 'hello' },
    ]);
    expect(d.client.inFlight()).toBe(0);
  });

  it('publishes presence "1" retained on connect; the Last Will sets "0" when the socket dies; back to "1" on reconnect', async () => {
    const id = uniqueId('w');
    const { js, received } = await cloud();
    await js.subscribeAsync(presenceTopic(id), { qos: 1 });
    // A fault-free proxy in front of Mosquitto, so that the test can kill the TCP connection.
    const proxy = await TcpFaultProxy.start({ targetHost: host, targetPort: port, seed: 1 });
    cleanups.push(() => proxy.close());
    const d = device(id, { port: proxy.port });
    await waitFor('presence 1', () => received.some((m) => m.payload === '1'));
    proxy.cutAll();
    await waitFor('will 0', () => received.some((m) => m.payload === '0'));
    await waitFor('presence 1 again', () => received.filter((m) => m.payload === '1').length === 2);
    expect(received.map((m) => m.payload)).toEqual(['1', '0', '1']);
    expect(d.events.disconnects).toEqual(['connection lost']);
    expect(d.events.connects.length).toBe(2);

    // A late subscriber sees the retained state; a clean stop publishes "0" itself.
    d.close();
    const late = await cloud();
    await late.js.subscribeAsync(presenceTopic(id), { qos: 1 });
    await waitFor('retained 0', () => late.received.length === 1);
    expect(late.received[0]).toEqual({ topic: presenceTopic(id), payload: '0', retain: true });
  });

  it('keeps its session: QoS 1 messages published while the device was off arrive on reconnect [persistent session]', async () => {
    const id = uniqueId('s');
    const d = device(id);
    await waitFor('connect', () => d.events.connects.length === 1);
    expect(d.events.connects[0]).toBe(false);
    d.client.subscribe(downlinkTopic(id), 1);
    await waitFor('suback', () => d.events.subacks.length === 1);
    d.client.stop();
    expect(d.client.subscribe(downlinkTopic(id), 1)).toBe(mqttErrorNotConnected);

    const { js } = await cloud();
    for (let i = 0; i < 5; i++) await js.publishAsync(downlinkTopic(id), `queued ${i}`, { qos: 1 });
    d.client.start(Date.now());
    await waitFor('5 queued messages', () => d.events.messages.length === 5);
    expect(d.events.connects).toEqual([false, true]);
    expect(d.events.messages.map((m) => m.payload)).toEqual([0, 1, 2, 3, 4].map((i) => `queued ${i}`));
  });

  it('accepts QoS 1 publishes while offline up to the window, then sends them on connect', async () => {
    const id = uniqueId('o');
    const { js, received } = await cloud();
    await js.subscribeAsync(uplinkTopic(id), { qos: 1 });
    const d = startClient({ host, port, clientId: id, presenceTopic: null });
    cleanups.push(() => d.close());
    d.client.stop();
    const ids: number[] = [];
    for (let i = 0; i < mqttInFlightMessagesMax; i++) ids.push(d.client.publish(uplinkTopic(id), `offline ${i}`, 1, false));
    expect(ids.every((x) => x > 0)).toBe(true);
    expect(d.client.publish(uplinkTopic(id), 'one too many', 1, false)).toBe(mqttErrorWindowFull);
    expect(d.client.publish(uplinkTopic(id), 'qos 0', 0, false)).toBe(mqttErrorNotConnected);
    d.client.start(Date.now());
    await waitFor('all acked', () => d.events.acked.length === ids.length);
    expect(d.events.acked).toEqual(ids);
    await waitFor('cloud has them', () => received.length === ids.length);
    expect(received.map((m) => m.payload)).toEqual(ids.map((_, i) => `offline ${i}`));
  });
});
