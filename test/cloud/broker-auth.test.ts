// Provisioning and MQTT authentication against the embedded broker over real TCP (MQTT.js):
// right secret connects, wrong secret / other device's credentials / mismatched client id are
// refused, ACLs keep a device on its own topics; and the same broker over an in-memory stream.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt, { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceConfigError } from '../../firmware/protocol/device-config.ts';
import { EmbeddedBroker } from '../../cloud-stub/embedded-broker.ts';
import { CredentialVerifier, hashSecret, serviceUsername, verifySecret } from '../../cloud-stub/identity.ts';
import { createCloudMetrics } from '../../cloud-stub/metrics.ts';
import { buildDeviceConfig, provisionDevice, writeDeviceConfig } from '../../cloud-stub/provisioning.ts';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import type { UplinkMessage } from '../../cloud-stub/transport.ts';
import { duplexPair, temporaryDir, waitFor } from './helpers.ts';

const temp = temporaryDir('tandem-auth-');
const repo = new SqliteRepository({ path: join(temp.dir, 'tandem.sqlite') });
const metrics = createCloudMetrics();
const logLines: string[] = [];
const received: UplinkMessage[] = [];
let broker: EmbeddedBroker;
let port = 0;
const secrets: Record<string, string> = {};
const clients: MqttClient[] = [];

function connect(options: { clientId: string; username?: string; password?: string }): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { ...options, reconnectPeriod: 0, connectTimeout: 3000, protocolVersion: 4 });
    clients.push(client);
    client.once('connect', () => resolve(client));
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
  });
}

beforeAll(async () => {
  for (const id of ['dev-a', 'dev-b']) {
    const outcome = await provisionDevice(repo, id, { hashCost: 1024 });
    if (outcome.outcome !== 'created') throw new Error('provision failed');
    secrets[id] = outcome.secret;
  }
  broker = await EmbeddedBroker.create({
    verifier: new CredentialVerifier(async (id) => {
      if (id === 'db-down') throw new Error('database is down');
      return repo.getDeviceSecretHash(id);
    }),
    serviceSecret: 'service-secret-for-tests',
    metrics,
    log: (line) => logLines.push(line),
  });
  broker.setHandler({ handleUplink: async (message) => void received.push(message) });
  port = await broker.listenTcp(0, '127.0.0.1');
});

afterAll(async () => {
  for (const client of clients) client.end(true);
  await broker.close();
  await repo.close();
  temp.remove();
});

describe('provisioning', () => {
  it('stores only a salted scrypt hash of the secret and writes a valid device config', async () => {
    const hash = (await repo.getDeviceSecretHash('dev-a'))!;
    expect(hash.startsWith('scrypt$1024$8$1$')).toBe(true);
    expect(hash).not.toContain(secrets['dev-a']);
    expect(await verifySecret(secrets['dev-a']!, hash)).toBe(true);
    expect(await verifySecret(secrets['dev-b']!, hash)).toBe(false);
    // Same secret, different salt: different hash.
    expect(await hashSecret('same', 1024)).not.toBe(await hashSecret('same', 1024));

    const path = join(temp.dir, 'devices', 'dev-a.json');
    writeDeviceConfig(path, buildDeviceConfig({ deviceId: 'dev-a', secret: secrets['dev-a']!, mqttHost: '127.0.0.1', mqttPort: port, tls: false }));
    const written = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    expect(deviceConfigError(written)).toBeNull();
    expect(written).toMatchObject({ deviceId: 'dev-a', mqttPort: port, tls: false });
  });

  it('refuses an existing device unless asked to rotate, and refuses bad ids', async () => {
    expect(await provisionDevice(repo, 'dev-a', { hashCost: 1024 })).toEqual({ outcome: 'exists' });
    expect((await provisionDevice(repo, 'bad/id', { hashCost: 1024 })).outcome).toBe('invalid-id');
    const rotated = await provisionDevice(repo, 'dev-c', { hashCost: 1024 });
    expect(rotated.outcome).toBe('created');
  });
});

describe('MQTT CONNECT authentication over TCP', () => {
  it('accepts the right secret and delivers uplinks to the session with the device id', async () => {
    const client = await connect({ clientId: 'dev-a', username: 'dev-a', password: secrets['dev-a'] });
    await client.publishAsync('t/dev-a/u', Buffer.from([1, 2, 3]), { qos: 1 });
    await waitFor(() => received.some((m) => m.deviceId === 'dev-a' && m.channel === 'uplink'), 3000, 'uplink');
    const message = received.find((m) => m.deviceId === 'dev-a')!;
    expect([...message.payload]).toEqual([1, 2, 3]);
    expect(broker.isConnected('dev-a')).toBe(true);
    await client.endAsync();
    await waitFor(() => !broker.isConnected('dev-a'), 3000, 'disconnect');
  });

  it('refuses a wrong secret, an unknown device, another device\'s secret and a mismatched client id', async () => {
    const before = metrics.get('tandem_mqtt_auth_failures_total');
    await expect(connect({ clientId: 'dev-a', username: 'dev-a', password: 'wrong' })).rejects.toThrow(/Bad username or password/);
    await expect(connect({ clientId: 'ghost', username: 'ghost', password: secrets['dev-a'] })).rejects.toThrow(/Bad username or password/);
    await expect(connect({ clientId: 'dev-a', username: 'dev-a', password: secrets['dev-b'] })).rejects.toThrow(/Bad username or password/);
    // dev-b's real credentials, but claiming dev-a's client id (a session takeover attempt).
    await expect(connect({ clientId: 'dev-a', username: 'dev-b', password: secrets['dev-b'] })).rejects.toThrow(/Not authorized/);
    await expect(connect({ clientId: 'dev-a' })).rejects.toThrow(/Bad username or password/);
    expect(metrics.get('tandem_mqtt_auth_failures_total')).toBe(before + 5);
  });

  it('answers "server unavailable", not "bad password", when the registry cannot be read', async () => {
    await expect(connect({ clientId: 'db-down', username: 'db-down', password: 'whatever' })).rejects.toThrow(/Server unavailable/);
  });

  it('accepts the service credential only with a $cloud- client id', async () => {
    const service = await connect({ clientId: '$cloud-test', username: serviceUsername, password: 'service-secret-for-tests' });
    service.end(true);
    await expect(connect({ clientId: '$cloud-test2', username: serviceUsername, password: 'nope' })).rejects.toThrow(/Bad username or password/);
    await expect(connect({ clientId: 'dev-a', username: serviceUsername, password: 'service-secret-for-tests' })).rejects.toThrow(/Not authorized/);
  });
});

describe('ACLs', () => {
  it('closes a device that publishes to another device\'s topic and never delivers the message', async () => {
    const client = await connect({ clientId: 'dev-b', username: 'dev-b', password: secrets['dev-b'] });
    const denialsBefore = metrics.get('tandem_mqtt_acl_denials_total');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('t/dev-a/u', Buffer.from('forged'), { qos: 0 });
    await closed;
    expect(metrics.get('tandem_mqtt_acl_denials_total')).toBe(denialsBefore + 1);
    expect(received.some((m) => m.payload.toString() === 'forged')).toBe(false);
  });

  it('grants a device its own downlink only and delivers downlinks to it', async () => {
    const client = await connect({ clientId: 'dev-b', username: 'dev-b', password: secrets['dev-b'] });
    // MQTT.js reports any refused filter as an error, with the SUBACK codes alongside.
    const codes = await new Promise<number[]>((resolve) =>
      client.subscribe(['t/dev-b/d', 't/dev-a/d', 't/+/u', '#'], { qos: 1 }, (_error, _subscriptions, suback) =>
        resolve((suback?.granted ?? []) as number[]),
      ),
    );
    expect(codes).toEqual([1, 128, 128, 128]);
    const got = new Promise<Buffer>((resolve) => client.once('message', (_topic, payload) => resolve(payload)));
    await broker.sendDownlink('dev-b', new Uint8Array([9, 8, 7]));
    expect([...(await got)]).toEqual([9, 8, 7]);
    // Presence on its own topic is allowed.
    await client.publishAsync('t/dev-b/p', '1', { qos: 1, retain: true });
    await waitFor(() => received.some((m) => m.deviceId === 'dev-b' && m.channel === 'presence'), 3000, 'presence');
    await client.endAsync();
  });
});

describe('handle(stream) over an in-memory duplex pair', () => {
  it('authenticates and carries uplinks without any socket', { timeout: 10_000 }, async () => {
    const [brokerSide, clientSide] = duplexPair();
    broker.handle(brokerSide);
    const client = new MqttClient(() => clientSide, {
      clientId: 'dev-c',
      username: 'dev-c',
      password: 'wrong',
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    clients.push(client);
    const error = await new Promise<Error>((resolve) => client.once('error', resolve));
    expect(error.message).toMatch(/Bad username or password/);
    client.end(true);

    const outcome = await provisionDevice(repo, 'dev-d', { hashCost: 1024 });
    if (outcome.outcome !== 'created') throw new Error('provision failed');
    const [brokerSide2, clientSide2] = duplexPair();
    broker.handle(brokerSide2);
    const good = new MqttClient(() => clientSide2, { clientId: 'dev-d', username: 'dev-d', password: outcome.secret, reconnectPeriod: 0, protocolVersion: 4 });
    clients.push(good);
    await new Promise<void>((resolve, reject) => {
      good.once('connect', () => resolve());
      good.once('error', reject);
    });
    await good.publishAsync('t/dev-d/u', Buffer.from('in-memory'), { qos: 1 });
    await waitFor(() => received.some((m) => m.deviceId === 'dev-d' && m.payload.toString() === 'in-memory'), 3000, 'uplink');
    await good.endAsync();
  });
});
