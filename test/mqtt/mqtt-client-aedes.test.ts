// The device MQTT client against an embedded Aedes broker: the same conformance as with Mosquitto,
// refused credentials (reported, no fast retries), dead-link detection by keepalive, retransmit
// with DUP on timeout, and a broker that sends garbage or oversized packets.
import mqtt from 'mqtt';
import { createServer, type Socket as NodeSocket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuthenticateError, PublishPacket } from 'aedes';
import { TcpFaultProxy } from '../../hal-mocks/tcp-fault-proxy.ts';
import { downlinkTopic, presenceTopic, uplinkTopic } from '../../firmware/protocol/topics.ts';
import { mqttStateConnected } from '../../firmware/core/mqtt/mqtt-client.ts';
import { startAedes } from './helpers/aedes-broker.ts';
import { startClient, waitFor } from './helpers/client-harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('MQTT client against Aedes', () => {
  it('connects, subscribes, publishes QoS 1 and receives; the Last Will fires on a dead socket', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    const id = 'dev-aedes';
    const js = await mqtt.connectAsync(`mqtt://127.0.0.1:${aedes.port}`, { clientId: 'cloud', reconnectPeriod: 0 });
    cleanups.push(() => js.endAsync(true));
    const cloudGot: string[] = [];
    js.on('message', (topic, payload) => cloudGot.push(`${topic} ${payload.toString('latin1')}`));
    await js.subscribeAsync([uplinkTopic(id), presenceTopic(id)], { qos: 1 });

    const proxy = await TcpFaultProxy.start({ targetHost: '127.0.0.1', targetPort: aedes.port, seed: 3 });
    cleanups.push(() => proxy.close());
    const d = startClient({ host: '127.0.0.1', port: proxy.port, clientId: id, username: id, password: 'secret', presenceTopic: presenceTopic(id) });
    cleanups.push(() => d.close());
    await waitFor('connect', () => d.events.connects.length === 1);
    d.client.subscribe(downlinkTopic(id), 1);
    await waitFor('suback', () => d.events.subacks.length === 1);
    const packetId = d.client.publish(uplinkTopic(id), 'event', 1, false);
    await waitFor('ack', () => d.events.acked.includes(packetId));
    await js.publishAsync(downlinkTopic(id), 'command', { qos: 1 });
    await waitFor('message', () => d.events.messages.length === 1);
    expect(d.events.messages[0]).toEqual({ topic: downlinkTopic(id), payload: 'command' });

    proxy.cutAll(); // the link dies: no DISCONNECT reaches the broker
    await waitFor('will and presence again', () => cloudGot.filter((m) => m.startsWith(presenceTopic(id))).length === 3);
    expect(cloudGot).toEqual([`${presenceTopic(id)} 1`, `${uplinkTopic(id)} event`, `${presenceTopic(id)} 0`, `${presenceTopic(id)} 1`]);
  });

  it('reports refused credentials and waits authRetryMs instead of retrying fast', async () => {
    let attempts = 0;
    const aedes = await startAedes({
      authenticate: (_client, username, password, done) => {
        attempts++;
        if (username === 'dev' && password?.toString() === 'right') return done(null, true);
        const error = new Error('bad credentials') as AuthenticateError;
        error.returnCode = 4;
        done(error, null);
      },
    });
    cleanups.push(() => aedes.close());
    const d = startClient({ host: '127.0.0.1', port: aedes.port, clientId: 'dev', username: 'dev', password: 'wrong', authRetryMs: 60000 });
    cleanups.push(() => d.close());
    await waitFor('refusal', () => d.events.disconnects.length === 1);
    expect(d.events.disconnects).toEqual(['refused: bad user name or password']);
    expect(d.client.retryInMs()).toBeGreaterThan(59000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(attempts).toBe(1); // the normal backoff (50..400 ms here) would have retried by now

    const good = startClient({ host: '127.0.0.1', port: aedes.port, clientId: 'dev', username: 'dev', password: 'right' });
    cleanups.push(() => good.close());
    await waitFor('accepted', () => good.events.connects.length === 1);
  });

  it('finds a link that went silent by keepalive, and reconnects [dead connection]', async () => {
    const aedes = await startAedes();
    cleanups.push(() => aedes.close());
    const proxy = await TcpFaultProxy.start({ targetHost: '127.0.0.1', targetPort: aedes.port, seed: 1 });
    cleanups.push(() => proxy.close());
    const d = startClient({ host: '127.0.0.1', port: proxy.port, clientId: 'quiet', keepAliveSec: 1, responseTimeoutMs: 400 });
    cleanups.push(() => d.close());
    await waitFor('connect', () => d.events.connects.length === 1);
    proxy.freezeAll();
    const frozenAt = Date.now();
    await waitFor('timeout', () => d.events.disconnects.length === 1, 4000);
    expect(d.events.disconnects).toEqual(['broker did not answer in time']);
    // Quiet for keepalive (1 s), then the PINGRESP deadline (0.4 s): 1.4 s, plus slack for a
    // loaded machine; far below the 1.5 x keepalive a broker would wait.
    expect(Date.now() - frozenAt).toBeLessThan(3000);
    await waitFor('reconnect', () => d.events.connects.length === 2, 4000);
    expect(proxy.connections).toBe(2);
  });

  it('retransmits an unacknowledged QoS 1 publish with DUP after retransmitMs; the ack counts once', async () => {
    const seen: PublishPacket[] = [];
    const aedes = await startAedes({
      authorizePublish: (_client, packet, callback) => {
        seen.push(packet);
        callback(null);
      },
    });
    cleanups.push(() => aedes.close());
    const proxy = await TcpFaultProxy.start({ targetHost: '127.0.0.1', targetPort: aedes.port, seed: 2 });
    cleanups.push(() => proxy.close());
    const d = startClient({ host: '127.0.0.1', port: proxy.port, clientId: 'slow', retransmitMs: 250 });
    cleanups.push(() => d.close());
    await waitFor('connect', () => d.events.connects.length === 1);
    proxy.freezeAll();
    const packetId = d.client.publish('t/slow/u', 'late', 1, false);
    await new Promise((resolve) => setTimeout(resolve, 700));
    proxy.thawAll();
    await waitFor('ack', () => d.events.acked.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(d.events.acked).toEqual([packetId]);
    const copies = seen.filter((p) => p.topic === 't/slow/u');
    expect(copies.length).toBeGreaterThanOrEqual(2);
    expect(copies[0].dup).toBe(false);
    expect(copies.slice(1).every((p) => p.dup && p.messageId === packetId)).toBe(true);
    expect(d.events.connects.length).toBe(1);
  });

  it('drops the connection on garbage or an oversized packet, then reconnects with backoff', async () => {
    let connection = 0;
    const sockets: NodeSocket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      const n = connection++;
      socket.once('data', () => {
        if (n === 0) socket.write(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n', 'latin1'));
        else if (n === 1) socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00, 0x30, 0xff, 0xff, 0x03])); // PUBLISH of 65535+ bytes
        else socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00]));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const d = startClient({ host: '127.0.0.1', port: address.port, clientId: 'g' });
    cleanups.push(() => d.close());
    // Connection 2 is accepted, then breaks; connection 3 is accepted and stays.
    await waitFor('third connection accepted', () => d.events.connects.length === 2);
    // 'H' = 0x48 reads as PUBACK with flags 8: refused at the first byte.
    expect(d.events.disconnects).toEqual(['malformed packet', 'packet too large']);
    expect(connection).toBe(3);
    expect(d.client.state).toBe(mqttStateConnected);
  });
});
