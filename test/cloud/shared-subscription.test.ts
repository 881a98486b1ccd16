// The external broker mode on the Mosquitto of this machine (127.0.0.1:1883): shared
// subscriptions split the uplinks between subscribers; two cloud instances on one PostgreSQL
// schema ingest every message once and dedupe retransmits across processes; and two real
// `tandem cloud` processes split the uplinks between them.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { startCloud, type CloudContext, type RunningCloud } from '../../cloud-stub/server.ts';
import { dropPostgresSchema, PostgresRepository } from '../../cloud-stub/storage/postgres-repository.ts';
import type { EventInput } from '../../cloud-stub/storage/repository.ts';
import type { UplinkHandler } from '../../cloud-stub/transport.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const brokerUrl = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const tandem = join(import.meta.dirname, '..', '..', 'scripts', 'tandem.mjs');
const run = randomBytes(4).toString('hex');
const temp = temporaryDir('tandem-shared-');
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  temp.remove();
});

function connect(clientId: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(brokerUrl, { clientId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000 });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    cleanups.push(() => void client.end(true));
  });
}

describe('shared subscriptions on Mosquitto', () => {
  it('two MQTT.js subscribers in one group split the messages: each gets some, none twice, all arrive', async () => {
    const group = `split${run}`;
    const topicRoot = `tandem-test-${run}`;
    const got: Array<string[]> = [[], []];
    for (const index of [0, 1]) {
      const subscriber = await connect(`split-${run}-${index}`);
      await subscriber.subscribeAsync(`$share/${group}/${topicRoot}/+/u`, { qos: 1 });
      subscriber.on('message', (_topic, payload) => got[index]!.push(payload.toString()));
    }
    const publisher = await connect(`split-${run}-pub`);
    for (let i = 0; i < 100; i++) await publisher.publishAsync(`${topicRoot}/d${i % 5}/u`, `m${i}`, { qos: 1 });
    await waitFor(() => got[0]!.length + got[1]!.length >= 100, 5000, 'all 100 messages');
    expect(got[0]!.length).toBeGreaterThan(0);
    expect(got[1]!.length).toBeGreaterThan(0);
    const all = [...got[0]!, ...got[1]!];
    expect(new Set(all).size).toBe(100);
    expect(all).toHaveLength(100);
  });
});

/** A stand-in session for this test: the payload is JSON `{ epoch, rows }`, ingested as is. */
function jsonIngestSession(handled: string[]): (context: CloudContext) => UplinkHandler {
  return (context) => ({
    async handleUplink(message) {
      if (message.channel !== 'uplink' || !message.deviceId.startsWith(`sh${run}`)) return;
      const frame = JSON.parse(message.payload.toString('utf8')) as { epoch: number; rows: EventInput[] };
      const outcome = await context.ingest.ingest(message.deviceId, frame.epoch, frame.rows);
      if (outcome.outcome !== 'committed') throw new Error('ingest overloaded');
      handled.push(`${message.deviceId}:${frame.rows[0]!.seq}`);
    },
  });
}

describe('two cloud instances on Mosquitto and one PostgreSQL schema', () => {
  it('ingest every frame once between them and dedupe retransmits across instances', async () => {
    const schema = `tandem_shared_${run}`;
    cleanups.push(() => dropPostgresSchema(databaseUrl, schema));
    const handled: Array<string[]> = [[], []];
    const clouds: RunningCloud[] = [];
    for (const index of [0, 1]) {
      const cloud = await startCloud({
        dataDir: join(temp.dir, `cloud-${index}`),
        mqttUrl: brokerUrl,
        shareGroup: `cloud${run}`,
        databaseUrl,
        databaseSchema: schema,
        httpPort: 0,
        httpHost: '127.0.0.1',
        session: jsonIngestSession(handled[index]!),
        log: () => {},
      });
      clouds.push(cloud);
      cleanups.push(() => cloud.stop());
    }

    const publisher = await connect(`sh${run}-pub`);
    const devices = 8;
    const framesPerDevice = 10;
    const rowsPerFrame = 20;
    const frame = (device: number, index: number): string =>
      JSON.stringify({
        epoch: 1,
        rows: Array.from({ length: rowsPerFrame }, (_, r) => ({ seq: index * rowsPerFrame + r + 1, templateId: '1', ts: 1_700_000_000_000 + r, fields: { d: device, r } })),
      });
    for (let index = 0; index < framesPerDevice; index++) {
      for (let device = 0; device < devices; device++) await publisher.publishAsync(`t/sh${run}d${device}/u`, frame(device, index), { qos: 1 });
    }
    // Retransmits of the first two frames of every device (as after a lost acknowledgement).
    for (let device = 0; device < devices; device++) {
      for (let index = 0; index < 2; index++) await publisher.publishAsync(`t/sh${run}d${device}/u`, frame(device, index), { qos: 1 });
    }
    const total = devices * (framesPerDevice + 2);
    await waitFor(() => handled[0]!.length + handled[1]!.length >= total, 10_000, `all ${total} frames handled`);
    expect(handled[0]!.length).toBeGreaterThan(0);
    expect(handled[1]!.length).toBeGreaterThan(0);

    const repository = await PostgresRepository.open({ connectionString: databaseUrl, schema, poolSize: 1 });
    cleanups.push(() => repository.close());
    for (let device = 0; device < devices; device++) expect(await repository.countEvents(`sh${run}d${device}`)).toBe(framesPerDevice * rowsPerFrame);
    const inserted = clouds.reduce((n, c) => n + c.context.metrics.get('tandem_ingest_events_total'), 0);
    const duplicates = clouds.reduce((n, c) => n + c.context.metrics.get('tandem_ingest_duplicates_total'), 0);
    expect(inserted).toBe(devices * framesPerDevice * rowsPerFrame);
    expect(duplicates).toBe(devices * 2 * rowsPerFrame);
  });
});

describe('two `tandem cloud` processes with MQTT_URL', () => {
  it('split the uplinks between the processes', async () => {
    const group = `proc${run}`;
    const children: ChildProcess[] = [];
    const outputs = ['', ''];
    for (const index of [0, 1]) {
      const child = spawn(process.execPath, [tandem, 'cloud', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', join(temp.dir, `proc-${index}`)], {
        env: { ...process.env, MQTT_URL: brokerUrl, TANDEM_SHARE_GROUP: group, DATABASE_URL: '' },
      });
      child.stdout!.on('data', (chunk: Buffer) => (outputs[index] += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (outputs[index] += chunk.toString()));
      children.push(child);
      cleanups.push(() => void child.kill('SIGKILL'));
    }
    await waitFor(() => outputs.every((out) => out.includes('ready in')), 15_000, 'both processes ready');
    for (const out of outputs) expect(out).toContain(`shared group '${group}'`);
    const ports = outputs.map((out) => Number(/http:\/\/127\.0\.0\.1:(\d+)\/api/.exec(out)![1]));

    const publisher = await connect(`proc${run}-pub`);
    for (let i = 0; i < 60; i++) await publisher.publishAsync(`t/pr${run}d${i % 6}/u`, Buffer.from([i]), { qos: 1 });

    const uplinks = async (port: number): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^tandem_uplink_messages_total (\d+)$/m.exec(text)![1]);
    };
    // Other tests may publish on t/+/u of the same broker at the same time, so one process can
    // pass 60 on its own while the other (starved on a loaded machine) has not yet read its share:
    // wait for both counts, not for the sum alone.
    let counts = [0, 0];
    await waitFor(
      async () => {
        counts = [await uplinks(ports[0]!), await uplinks(ports[1]!)];
        return counts[0]! > 0 && counts[1]! > 0 && counts[0]! + counts[1]! >= 60;
      },
      15_000,
      'uplinks counted by both processes',
    ).catch((error: Error) => {
      throw new Error(`${error.message}: counts ${counts.join(' and ')}`);
    });
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[1]).toBeGreaterThan(0);

    for (const child of children) {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    }
  });
});
