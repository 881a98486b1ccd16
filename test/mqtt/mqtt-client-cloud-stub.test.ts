// The device MQTT client against the cloud stub's own broker (embedded Aedes with device
// authentication and ACLs): a device provisioned by `tandem provision` connects with its secret
// over plain MQTT and over TLS with the pinned CA, and what it does by itself (presence publish,
// Last Will, downlink subscription, uplink QoS 1) is what the ACLs allow.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import type { DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { downlinkTopic, presenceTopic, uplinkTopic } from '../../firmware/protocol/topics.ts';
import { MqttClient } from '../../firmware/core/mqtt/mqtt-client.ts';
import { NodeNetwork } from '../../hal-mocks/node-network.ts';
import { run as runProvision } from '../../scripts/commands/provision.ts';
import { RecordingEvents, waitFor } from './helpers/client-harness.ts';
import { SeededRandom } from './helpers/seeded-random.ts';

const dir = mkdtempSync(join(tmpdir(), 'tandem-mqtt-cloud-'));
const dataDir = join(dir, 'cloud');
let cloud: RunningCloud;
const savedDatabaseUrl = process.env.DATABASE_URL;

async function provision(deviceId: string, tls: boolean): Promise<DeviceConfig> {
  const out = join(dir, `${deviceId}.json`);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    const code = await runProvision([deviceId, '--data-dir', dataDir, '--out', out, ...(tls ? ['--tls'] : [])]);
    expect(code).toBe(0);
  } finally {
    log.mockRestore();
  }
  return JSON.parse(readFileSync(out, 'utf8')) as DeviceConfig;
}

beforeAll(async () => {
  // The provisioning command and the cloud must share the SQLite file in dataDir.
  delete process.env.DATABASE_URL;
  await provision('mqtt-plain', false);
  await provision('mqtt-tls', true);
  cloud = await startCloud({ dataDir, mqttPort: 0, tlsPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {} });
});

afterAll(async () => {
  await cloud?.stop();
  if (savedDatabaseUrl !== undefined) process.env.DATABASE_URL = savedDatabaseUrl;
  rmSync(dir, { recursive: true, force: true });
});

async function exercise(config: DeviceConfig, secure: boolean): Promise<RecordingEvents> {
  const events = new RecordingEvents();
  const network = new NodeNetwork({ caCert: config.caCert });
  const client = new MqttClient(network, new SeededRandom(1), events, {
    host: '127.0.0.1',
    port: secure ? cloud.mqttsPort! : cloud.mqttPort!,
    secure,
    clientId: config.deviceId,
    username: config.deviceId,
    password: config.secret,
    presenceTopic: presenceTopic(config.deviceId),
    cleanSession: false,
    responseTimeoutMs: 4000,
  });
  client.start(Date.now());
  const timer = setInterval(() => client.tick(Date.now()), 10);
  try {
    await waitFor('connect', () => events.connects.length === 1, 8000);
    const own = client.subscribe(downlinkTopic(config.deviceId), 1);
    const foreign = client.subscribe(downlinkTopic('someone-else'), 1);
    await waitFor('two subacks', () => events.subacks.length === 2);
    // Aedes authorizes subscriptions asynchronously: the SUBACKs may come in either order.
    expect([...events.subacks].sort((a, b) => a.packetId - b.packetId)).toEqual([
      { packetId: own, grantedQos: 1 },
      { packetId: foreign, grantedQos: 128 }, // the ACL refuses another device's topic
    ]);
    const packetId = client.publish(uplinkTopic(config.deviceId), new Uint8Array([0]), 1, false);
    await waitFor('uplink acked', () => events.acked.includes(packetId));
    expect(events.disconnects).toEqual([]);
  } finally {
    clearInterval(timer);
    client.stop();
  }
  return events;
}

describe('MQTT client against the cloud stub broker', () => {
  it('connects with its provisioned secret over plain MQTT; the ACLs allow what it does', async () => {
    await exercise(JSON.parse(readFileSync(join(dir, 'mqtt-plain.json'), 'utf8')) as DeviceConfig, false);
  });

  it('connects over TLS with the pinned CA', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'mqtt-tls.json'), 'utf8')) as DeviceConfig;
    expect(config.caCert).toMatch(/BEGIN CERTIFICATE/);
    await exercise(config, true);
  });

  it('reports a wrong secret as refused credentials', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'mqtt-plain.json'), 'utf8')) as DeviceConfig;
    const events = new RecordingEvents();
    const client = new MqttClient(new NodeNetwork(), new SeededRandom(1), events, {
      host: '127.0.0.1', port: cloud.mqttPort!, secure: false, clientId: config.deviceId, username: config.deviceId,
      password: 'not-the-secret', presenceTopic: null, cleanSession: false,
    });
    client.start(Date.now());
    const timer = setInterval(() => client.tick(Date.now()), 10);
    try {
      await waitFor('refusal', () => events.disconnects.length === 1, 8000);
      expect(events.disconnects).toEqual(['refused: bad user name or password']);
    } finally {
      clearInterval(timer);
      client.stop();
    }
  });
});
