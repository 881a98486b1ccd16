// kill -9 in the middle of ingest loses no acknowledged event: a cloud child process ingests
// frames from a device over real MQTT and acknowledges after commit; it is killed with SIGKILL
// while frames are in flight, and every acknowledged row must be in the SQLite file afterwards.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const temp = temporaryDir('tandem-kill-');
afterAll(() => temp.remove());

describe('kill -9 during ingest', () => {
  it('keeps every acknowledged event', async () => {
    const dbPath = join(temp.dir, 'tandem.sqlite');
    const registry = new SqliteRepository({ path: dbPath });
    const provisioned = await provisionDevice(registry, 'dev-k', { hashCost: 1024 });
    await registry.close();
    if (provisioned.outcome !== 'created') throw new Error('provision failed');

    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'ack-after-commit-cloud.ts'), temp.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => /READY \d+/.test(output), 15_000, 'the cloud child to start');
    const port = Number(/READY (\d+)/.exec(output)![1]);

    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'dev-k', username: 'dev-k', password: provisioned.secret, reconnectPeriod: 0, protocolVersion: 4 });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync('t/dev-k/d', { qos: 1 });
    const acked = new Set<number>();
    client.on('message', (_topic, payload) => {
      for (const seq of (JSON.parse(payload.toString()) as { acked: number[] }).acked) acked.add(seq);
    });
    client.on('error', () => {});

    // Publish frames of 50 rows as fast as the broker takes them, until well after acks flow.
    let nextSeq = 1;
    let sent = 0;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let killed = false;
    const publishing = (async () => {
      while (!killed && sent < 4000) {
        const rows = Array.from({ length: 50 }, (_, i) => ({ seq: nextSeq + i, templateId: '1', ts: 1_700_000_000_000 + nextSeq + i, fields: { v: nextSeq + i } }));
        nextSeq += 50;
        sent++;
        client.publish('t/dev-k/u', JSON.stringify({ epoch: 1, rows }), { qos: 0 });
        if (sent % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await waitFor(() => acked.size >= 2000, 10_000, 'acknowledgements to flow');
    child.kill('SIGKILL');
    killed = true;
    await exited;
    await publishing;
    client.end(true);

    const ackedSnapshot = [...acked];
    expect(ackedSnapshot.length).toBeGreaterThanOrEqual(2000);
    const after = new SqliteRepository({ path: dbPath });
    try {
      const stored = new Set<number>();
      let cursor: { ts: number; id: number } | undefined;
      for (;;) {
        const page = await after.listEvents('dev-k', { limit: 1000, after: cursor });
        for (const event of page) stored.add(event.seq);
        if (page.length < 1000) break;
        cursor = { ts: page[page.length - 1]!.ts, id: page[page.length - 1]!.id };
      }
      const lost = ackedSnapshot.filter((seq) => !stored.has(seq));
      expect(lost).toEqual([]);
      // The kill really hit mid-stream: more was sent than was acknowledged.
      expect(sent * 50).toBeGreaterThan(ackedSnapshot.length);
    } finally {
      await after.close();
    }
  });
});
