// Downstream routes of a cloud started in-process (SQLite file, real HTTP on loopback): a webhook
// that fails and recovers (nothing lost, ingest never waits for it), dead letters after the maximum
// attempts (inspectable over HTTP), state changes, a durable cursor across a restart, the purge of the
// state-change log (SQLite and PostgreSQL), `tandem cloud --downstream`, NDJSON files
// per UTC day without duplicates after a crash between write and cursor.
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDownstreamConfig, type RouteConfig } from '../../cloud-stub/downstream/config.ts';
import { NdjsonDestination } from '../../cloud-stub/downstream/ndjson.ts';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import type { EventInput, Repository, StoredEvent } from '../../cloud-stub/storage/repository.ts';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import { dropPostgresSchema, PostgresRepository } from '../../cloud-stub/storage/postgres-repository.ts';
import { randomBytes } from 'node:crypto';
import { temporaryDir, waitFor } from './helpers.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Receiver {
  url: string;
  bodies: Array<{ route: string; stream: string; firstId: number; lastId: number; items: Array<Record<string, unknown>> }>;
  requests: number;
  /** Answer with this status (200 = accept). */
  status: number;
}

async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', bodies: [], requests: 0, status: 200 };
  const server: Server = createServer((request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      receiver.requests++;
      if (receiver.status === 200) receiver.bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Receiver['bodies'][number]);
      response.writeHead(receiver.status, { 'content-type': 'text/plain' });
      response.end(receiver.status === 200 ? 'ok' : 'down for maintenance');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  receiver.url = `http://127.0.0.1:${address.port}/hook`;
  cleanups.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  return receiver;
}

function routes(value: unknown, baseDir = '/tmp'): RouteConfig[] {
  return parseDownstreamConfig(value, baseDir, { HOOK_TOKEN: 'very-secret-token' });
}

async function cloudWith(downstreamRoutes: RouteConfig[], dataDir?: string, now?: () => number): Promise<RunningCloud> {
  let dir = dataDir;
  if (dir === undefined) {
    const temp = temporaryDir('tandem-downstream-');
    cleanups.push(() => temp.remove());
    dir = temp.dir;
  }
  const cloud = await startCloud({
    dataDir: dir, mqttPort: 0, httpPort: 0, mqttHost: '127.0.0.1', httpHost: '127.0.0.1', log: () => {},
    session: () => ({ handleUplink: async () => {} }), downstreamRoutes, downstreamPollMs: 50, now,
  });
  cleanups.push(() => cloud.stop());
  return cloud;
}

function rows(fromSeq: number, count: number): EventInput[] {
  return Array.from({ length: count }, (_, i) => ({ seq: fromSeq + i, templateId: 'telemetry', ts: 1_750_000_000_000 + (fromSeq + i) * 1000, fields: { n: fromSeq + i } }));
}

function api(cloud: RunningCloud, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', `Bearer ${cloud.adminToken}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch(`http://127.0.0.1:${cloud.httpPort}${path}`, { ...init, headers });
}

describe('webhook route', () => {
  it('a failing webhook never blocks ingest; when it recovers every event arrives, in id order', async () => {
    const receiver = await startReceiver();
    receiver.status = 503;
    const cloud = await cloudWith(routes({ routes: { hook: { type: 'webhook', url: receiver.url, headers: { authorization: 'Bearer ${HOOK_TOKEN}' }, backoffMs: 20, backoffMsMax: 100, batchMax: 40 } } }));
    // While the destination is down, ingest commits at its own pace.
    for (let batch = 0; batch < 5; batch++) {
      const started = performance.now();
      const outcome = await cloud.context.ingest.ingest('dev-a', 1, rows(batch * 50 + 1, 50));
      expect(outcome.outcome).toBe('committed');
      expect(performance.now() - started).toBeLessThan(500);
    }
    await waitFor(() => receiver.requests >= 3, 5000, 'failed attempts');
    const down = (await (await api(cloud, '/api/downstream')).json()) as { routes: Array<{ name: string; lag: { events: number }; failures: number; lastError: string }> };
    expect(down.routes[0]!.name).toBe('hook');
    expect(down.routes[0]!.lag.events).toBe(250);
    expect(down.routes[0]!.failures).toBeGreaterThanOrEqual(3);
    expect(down.routes[0]!.lastError).toContain('HTTP 503');
    // The token reaches the destination but never the API.
    expect(JSON.stringify(down)).not.toContain('very-secret-token');

    receiver.status = 200;
    await waitFor(() => receiver.bodies.reduce((n, body) => n + body.items.length, 0) >= 250, 8000, 'delivery after recovery');
    const ids = receiver.bodies.flatMap((body) => body.items.map((item) => item.id as number));
    expect(new Set(ids).size).toBe(250);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(receiver.bodies.every((body) => body.stream === 'events' && body.route === 'hook' && body.items.length <= 40)).toBe(true);
    const seqs = receiver.bodies.flatMap((body) => body.items.map((item) => item.seq as number)).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    await waitFor(async () => {
      const status = (await (await api(cloud, '/api/downstream')).json()) as { routes: Array<{ lag: { events: number }; attempts: number }> };
      return status.routes[0]!.lag.events === 0 && status.routes[0]!.attempts === 0;
    }, 3000, 'lag 0');
    const metrics = await (await fetch(`http://127.0.0.1:${cloud.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/tandem_downstream_delivered_total\{route="hook",stream="events"\} 250/);
    expect(metrics).toMatch(/tandem_downstream_lag_events\{route="hook"\} 0/);
    expect(metrics).toMatch(/tandem_downstream_failures_total\{route="hook"\} [1-9]/);
  });

  it('after maxAttempts a batch becomes a dead letter, inspectable over HTTP, and the route moves on', async () => {
    const receiver = await startReceiver();
    receiver.status = 500;
    const cloud = await cloudWith(routes({ routes: { hook: { type: 'webhook', url: receiver.url, maxAttempts: 3, backoffMs: 5, batchMax: 10, streams: ['events'] } } }));
    await cloud.context.ingest.ingest('dev-b', 2, rows(1, 15));
    await waitFor(async () => (await cloud.context.repository.countDeadLetters('hook')) === 2, 5000, 'two dead letters');
    expect(receiver.requests).toBe(6);
    const page = (await (await api(cloud, '/api/downstream/hook/dead-letters?limit=1')).json()) as { deadLetters: Array<{ id: number; firstId: number; lastId: number; attempts: number; error: string; payload: Array<{ seq: number }> }> };
    expect(page.deadLetters).toHaveLength(1);
    const first = page.deadLetters[0]!;
    expect(first.attempts).toBe(3);
    expect(first.error).toContain('HTTP 500');
    expect(first.payload.map((item) => item.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const next = (await (await api(cloud, `/api/downstream/hook/dead-letters?after=${first.id}`)).json()) as { deadLetters: Array<{ payload: Array<{ seq: number }> }> };
    expect(next.deadLetters.map((letter) => letter.payload.map((item) => item.seq))).toEqual([[11, 12, 13, 14, 15]]);
    expect((await api(cloud, '/api/downstream/nope/dead-letters')).status).toBe(404);
    expect((await api(cloud, '/api/downstream/hook/dead-letters?limit=0')).status).toBe(400);
    const status = (await (await api(cloud, '/api/downstream')).json()) as { routes: Array<{ lag: { events: number }; deadLetters: number }> };
    expect(status.routes[0]).toMatchObject({ lag: { events: 0 }, deadLetters: 2 });
    const metrics = await (await fetch(`http://127.0.0.1:${cloud.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/tandem_downstream_dead_letters_total\{route="hook"\} 2/);
    // Later events still flow once the destination answers.
    receiver.status = 200;
    await cloud.context.ingest.ingest('dev-b', 2, rows(16, 3));
    await waitFor(() => receiver.bodies.length === 1, 3000, 'delivery after dead letters');
    expect(receiver.bodies[0]!.items.map((item) => item.seq)).toEqual([16, 17, 18]);
  });

  it('state changes (desired from the API, reported from devices) go downstream; the cursor survives a restart', async () => {
    const receiver = await startReceiver();
    const temp = temporaryDir('tandem-downstream-restart-');
    cleanups.push(() => temp.remove());
    const config = routes({ routes: { hook: { type: 'webhook', url: receiver.url, backoffMs: 10 } } });
    const first = await cloudWith(config, temp.dir);
    await provisionDevice(first.context.repository, 'dev-c', { hashCost: 1024 });
    const patched = await api(first, '/api/devices/dev-c/state/desired', { method: 'PATCH', headers: { 'if-match': '"0"' }, body: JSON.stringify({ interval: 30 }) });
    expect(patched.status).toBe(200);
    await first.context.repository.applyReported('dev-c', [{ key: 'fw', value: '1.2.3', version: 4, ts: 1000 }]);
    first.context.live.publish({ type: 'reported', deviceId: 'dev-c', keys: ['fw'] });
    await first.context.ingest.ingest('dev-c', 1, rows(1, 5));
    await waitFor(() => receiver.bodies.filter((b) => b.stream === 'state').flatMap((b) => b.items).length === 2 && receiver.bodies.filter((b) => b.stream === 'events').flatMap((b) => b.items).length === 5, 3000, 'state and events');
    const changes = receiver.bodies.filter((b) => b.stream === 'state').flatMap((b) => b.items);
    expect(changes).toEqual([
      expect.objectContaining({ deviceId: 'dev-c', side: 'desired', key: 'interval', value: 30, version: 1 }),
      expect.objectContaining({ deviceId: 'dev-c', side: 'reported', key: 'fw', value: '1.2.3', version: 4 }),
    ]);
    await first.stop();

    receiver.bodies.length = 0;
    const second = await cloudWith(config, temp.dir);
    await second.context.ingest.ingest('dev-c', 1, rows(6, 2));
    await waitFor(() => receiver.bodies.length > 0, 3000, 'delivery after restart');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Only what is new since the restart: delivered events are not sent again.
    expect(receiver.bodies.flatMap((b) => b.items.map((item) => item.seq))).toEqual([6, 7]);
  });

  it('a route with from "now" skips what was stored before it was added', async () => {
    const receiver = await startReceiver();
    const temp = temporaryDir('tandem-downstream-from-');
    cleanups.push(() => temp.remove());
    const plain = await cloudWith([], temp.dir);
    await plain.context.ingest.ingest('dev-d', 1, rows(1, 3));
    await plain.stop();
    const cloud = await cloudWith(routes({ routes: { late: { type: 'webhook', url: receiver.url, from: 'now' } } }), temp.dir);
    await cloud.context.ingest.ingest('dev-d', 1, rows(4, 2));
    await waitFor(() => receiver.bodies.length > 0, 3000, 'delivery');
    expect(receiver.bodies.flatMap((b) => b.items.map((item) => item.seq))).toEqual([4, 5]);
  });
});

/** The log is purged only behind every route's cursor; run against both stores. */
async function stateChangePurgeContract(repository: Repository): Promise<void> {
  await repository.createDevice('dev-p', 'x', 0);
  await repository.applyReported('dev-p', [
    { key: 'a', value: 1, version: 1, ts: 1000 },
    { key: 'b', value: 2, version: 1, ts: 2000 },
    { key: 'c', value: 3, version: 1, ts: 3000 },
  ]);
  const ids = (await repository.stateChangesAfter(0, 10)).map((change) => change.id);
  expect(ids).toHaveLength(3);
  // No route: only age counts.
  expect(await repository.purgeStateChanges(1500)).toBe(1);
  // A route that has delivered nothing holds everything back, however old.
  await repository.openDownstreamCursor('slow', { eventId: 0, stateChangeId: 0 });
  expect(await repository.purgeStateChanges(10_000)).toBe(0);
  await repository.advanceDownstreamCursor('slow', 'state', ids[1]!);
  expect(await repository.purgeStateChanges(10_000)).toBe(1);
  expect((await repository.stateChangesAfter(0, 10)).map((change) => change.id)).toEqual([ids[2]]);
}

describe('state-change log', () => {
  it('is purged by age, but never past a route that has not delivered it (SQLite)', async () => {
    const temp = temporaryDir('tandem-purge-');
    cleanups.push(() => temp.remove());
    const repository = new SqliteRepository({ path: join(temp.dir, 'tandem.sqlite') });
    cleanups.push(() => repository.close());
    await stateChangePurgeContract(repository);
  });

  it('is purged by age, but never past a route that has not delivered it (PostgreSQL)', async () => {
    const connectionString = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    const schema = `tandem_test_${randomBytes(6).toString('hex')}`;
    cleanups.push(() => dropPostgresSchema(connectionString, schema));
    const repository = await PostgresRepository.open({ connectionString, schema, poolSize: 2 });
    cleanups.push(() => repository.close());
    await stateChangePurgeContract(repository);
  });
});

describe('routes file', () => {
  it('refuses bad routes with a line naming the route and field', () => {
    expect(() => routes({ routes: { x: { type: 'ftp' } } })).toThrow(/route 'x': type must be/);
    expect(() => routes({ routes: { x: { type: 'webhook', url: 'file:///etc/passwd' } } })).toThrow(/url must start with http/);
    expect(() => routes({ routes: { x: { type: 'webhook', url: 'http://h/', headers: { a: '${MISSING_VAR}' } } } })).toThrow(/MISSING_VAR/);
    expect(() => routes({ routes: { x: { type: 'mqtt', url: 'mqtt://h', topicPrefix: 'a/#' } } })).toThrow(/wildcards/);
    expect(() => routes({ routes: { x: { type: 'ndjson', dir: 'out', batchMax: 0 } } })).toThrow(/batchMax/);
    expect(() => routes({ routes: { 'bad name!': { type: 'ndjson', dir: 'out' } } })).toThrow(/names are/);
    expect(() => routes([])).toThrow(/expected/);
    const [ndjson] = routes({ routes: { files: { type: 'ndjson', dir: 'out' } } }, '/data');
    expect(ndjson!.destination).toEqual({ type: 'ndjson', dir: '/data/out' });
    expect(ndjson!.maxAttempts).toBe(0);
  });
});

describe('tandem cloud --downstream', () => {
  const tandem = join(import.meta.dirname, '..', '..', 'scripts', 'tandem.mjs');

  it('a bad routes file gives one clear line and exit code 2', () => {
    const temp = temporaryDir('tandem-downstream-cli-');
    cleanups.push(() => temp.remove());
    const file = join(temp.dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ routes: { hook: { type: 'webhook', url: 'https://example.com/', headers: { a: '${TANDEM_TEST_UNSET_VAR}' } } } }));
    const result = spawnSync(process.execPath, [tandem, 'cloud', '--downstream', file, '--mqtt-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', temp.dir], { encoding: 'utf8', timeout: 15_000, env: { ...process.env, MQTT_URL: '', DATABASE_URL: '' } });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/downstream route 'hook'.*TANDEM_TEST_UNSET_VAR/)]);
  });

  it('runs the routes of the file: an NDJSON folder next to it receives what is committed', async () => {
    const temp = temporaryDir('tandem-downstream-cli-ok-');
    cleanups.push(() => temp.remove());
    const file = join(temp.dir, 'routes.json');
    writeFileSync(file, JSON.stringify({ routes: { files: { type: 'ndjson', dir: 'out' } } }));
    const child = spawn(process.execPath, [tandem, 'cloud', '--downstream', file, '--mqtt-port', '0', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', join(temp.dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MQTT_URL: '', DATABASE_URL: '' } });
    cleanups.push(() => new Promise<void>((resolve) => { if (child.exitCode !== null) resolve(); else { child.once('exit', () => resolve()); child.kill('SIGKILL'); } }));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    await waitFor(() => /ready in/.test(output), 15_000, 'cloud ready');
    expect(output).toMatch(/downstream: route 'files' \(ndjson .*out\)/);
    const port = Number(/API on http:\/\/[^:]+:(\d+)/.exec(output)![1]);
    const token = readFileSync(join(temp.dir, 'data', 'admin-token'), 'utf8').trim();
    const status = (await (await fetch(`http://127.0.0.1:${port}/api/downstream`, { headers: { authorization: `Bearer ${token}` } })).json()) as { routes: Array<{ name: string; type: string }> };
    expect(status.routes.map((r) => [r.name, r.type])).toEqual([['files', 'ndjson']]);
    child.kill('SIGINT');
    await new Promise<void>((resolve) => child.once('exit', () => resolve()));
    expect(child.exitCode).toBe(0);
  });
});

describe('NDJSON route', () => {
  it('writes one file per UTC day by commit time, with every event and state change once', async () => {
    const out = temporaryDir('tandem-ndjson-');
    cleanups.push(() => out.remove());
    let clock = Date.UTC(2026, 10, 27, 23, 59, 59);
    const cloud = await cloudWith(routes({ routes: { files: { type: 'ndjson', dir: out.dir } } }), undefined, () => clock);
    await cloud.context.ingest.ingest('dev-n', 1, rows(1, 3));
    clock += 2000; // past midnight UTC
    await cloud.context.ingest.ingest('dev-n', 1, rows(4, 2));
    await provisionDevice(cloud.context.repository, 'dev-n', { hashCost: 1024 });
    await cloud.context.repository.patchDesired('dev-n', 0, { mode: 'eco' }, clock);
    cloud.downstream!.notify();
    await waitFor(async () => (await cloud.downstream!.status())[0]!.lag.events === 0 && (await cloud.downstream!.status())[0]!.lag.stateChanges === 0, 3000, 'delivered');
    expect(readdirSync(out.dir).sort()).toEqual(['tandem-2026-11-27.ndjson', 'tandem-2026-11-28.ndjson']);
    const lines = (file: string) => readFileSync(join(out.dir, file), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines('tandem-2026-11-27.ndjson').map((l) => l.seq)).toEqual([1, 2, 3]);
    const day2 = lines('tandem-2026-11-28.ndjson');
    expect(day2.filter((l) => l.stream === 'events').map((l) => l.seq)).toEqual([4, 5]);
    expect(day2.filter((l) => l.stream === 'state')).toEqual([expect.objectContaining({ key: 'mode', value: 'eco', side: 'desired' })]);
  });

  it('a batch written just before a crash (cursor not moved) is not written twice', async () => {
    const out = temporaryDir('tandem-ndjson-crash-');
    cleanups.push(() => out.remove());
    const event = (id: number): StoredEvent => ({ id, deviceId: 'd', epoch: 1, seq: id, templateId: 'telemetry', ts: 0, fields: {}, receivedAtMs: Date.UTC(2026, 0, 1) });
    const signal = new AbortController().signal;
    await new NdjsonDestination(out.dir).deliverEvents([event(1), event(2)], signal);
    // A new process delivers the same batch again, then the next one.
    const again = new NdjsonDestination(out.dir);
    await again.deliverEvents([event(1), event(2)], signal);
    await again.deliverEvents([event(3)], signal);
    const ids = readFileSync(join(out.dir, 'tandem-2026-01-01.ndjson'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { id: number }).id);
    expect(ids).toEqual([1, 2, 3]);
  });
});
