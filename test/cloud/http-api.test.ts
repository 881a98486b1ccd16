// The HTTP API of a cloud started in-process (real HTTP on loopback, SQLite file): admin token,
// If-Match on desired state (409/428), events pagination, the message queue, bad input (malformed
// JSON, `__proto__`, wrong types, oversized bodies), the SSE stream, metrics and OpenAPI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import type { EventInput } from '../../cloud-stub/storage/repository.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const temp = temporaryDir('tandem-http-');
let cloud: RunningCloud;
let base = '';
let token = '';
const t0 = 1_750_000_000_000;

function api(path: string, init: RequestInit & { auth?: string | null } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const auth = init.auth === undefined ? token : init.auth;
  if (auth !== null) headers.set('authorization', `Bearer ${auth}`);
  if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  return fetch(base + path, { ...init, headers });
}

function events(fromSeq: number, count: number): EventInput[] {
  return Array.from({ length: count }, (_, i) => ({ seq: fromSeq + i, templateId: '7', ts: t0 + (fromSeq + i) * 1000, fields: { n: fromSeq + i } }));
}

beforeAll(async () => {
  cloud = await startCloud({ dataDir: temp.dir, mqttPort: 0, httpPort: 0, mqttHost: '127.0.0.1', httpHost: '127.0.0.1', expirySweepMs: 100, log: () => {} });
  base = `http://127.0.0.1:${cloud.httpPort}`;
  token = cloud.adminToken;
  for (const id of ['dev-1', 'dev-2']) await provisionDevice(cloud.context.repository, id, { hashCost: 1024 });
});

afterAll(async () => {
  await cloud.stop();
  temp.remove();
});

describe('admin token', () => {
  it('was generated into the data directory on first start', () => {
    expect(cloud.adminTokenCreated).toBe(true);
    expect(token.length).toBeGreaterThanOrEqual(40);
  });

  it('answers 401 without it or with a wrong one, and leaves metrics and OpenAPI public', async () => {
    const missing = await api('/api/devices', { auth: null });
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect((await api('/api/devices', { auth: token + 'x' })).status).toBe(401);
    expect((await api('/api/devices/dev-1/state', { auth: 'short' })).status).toBe(401);
    expect((await api('/metrics', { auth: null })).status).toBe(200);
    expect((await api('/api/openapi.json', { auth: null })).status).toBe(200);
  });
});

describe('devices', () => {
  it('lists provisioned devices with connection status, 404 for unknown ones, 405 and 404 for bad routes', async () => {
    const list = (await (await api('/api/devices')).json()) as { devices: Array<{ deviceId: string; connected: boolean }> };
    expect(list.devices.map((d) => [d.deviceId, d.connected])).toEqual([
      ['dev-1', false],
      ['dev-2', false],
    ]);
    expect(((await (await api('/api/devices/dev-1')).json()) as { deviceId: string }).deviceId).toBe('dev-1');
    expect((await api('/api/devices/nobody')).status).toBe(404);
    const wrongMethod = await api('/api/devices', { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
    expect((await api('/api/nothing-here')).status).toBe(404);
  });
});

describe('desired state with If-Match', () => {
  it('needs If-Match (428), applies at the current version, refuses a stale one (409)', async () => {
    const state = await api('/api/devices/dev-1/state');
    expect(state.headers.get('etag')).toBe('"0"');
    const patch = (ifMatch: string | null, body: unknown): Promise<Response> =>
      api('/api/devices/dev-1/state/desired', { method: 'PATCH', body: JSON.stringify(body), headers: ifMatch === null ? {} : { 'if-match': ifMatch } });

    const noIfMatch = await patch(null, { led: true });
    expect(noIfMatch.status).toBe(428);
    const applied = await patch('"0"', { led: true, rate: 5 });
    expect(applied.status).toBe(200);
    expect(applied.headers.get('etag')).toBe('"1"');
    expect(await applied.json()).toMatchObject({ desiredVersion: 1 });

    const stale = await patch('"0"', { led: false });
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { desiredVersion: number } }).error.desiredVersion).toBe(1);
    expect((await patch('1', { led: false })).status).toBe(200);

    const after = (await (await api('/api/devices/dev-1/state')).json()) as { desiredVersion: number; entries: Array<{ key: string; desiredValue: unknown; desiredVersion: number }> };
    expect(after.desiredVersion).toBe(2);
    expect(after.entries.map((e) => [e.key, e.desiredValue, e.desiredVersion])).toEqual([
      ['led', false, 2],
      ['rate', 5, 1],
    ]);
    expect((await api('/api/devices/nobody/state/desired', { method: 'PATCH', body: '{"a":1}', headers: { 'if-match': '0' } })).status).toBe(404);
  });

  it('refuses malformed JSON, wrong shapes, bad keys and garbage If-Match with 400', async () => {
    const patch = (body: string, ifMatch = '"2"'): Promise<Response> => api('/api/devices/dev-1/state/desired', { method: 'PATCH', body, headers: { 'if-match': ifMatch } });
    const cases: Array<[string, string]> = [
      ['{"led": tru', 'malformed-json'],
      ['[1,2]', 'bad-body'],
      ['"text"', 'bad-body'],
      ['{}', 'bad-body'],
      ['{"bad key!": 1}', 'bad-key'],
      [`{"big": "${'x'.repeat(600)}"}`, 'value-too-large'],
    ];
    for (const [body, code] of cases) {
      const response = await patch(body);
      expect(response.status, body).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code, body).toBe(code);
    }
    expect((await patch('{"a":1}', 'yesterday')).status).toBe(400);
    const wrongType = await api('/api/devices/dev-1/state/desired', { method: 'PATCH', body: 'a=1', headers: { 'if-match': '2', 'content-type': 'application/x-www-form-urlencoded' } });
    expect(wrongType.status).toBe(415);
  });

  it('refuses __proto__ (and constructor/prototype) keys anywhere, without polluting anything', async () => {
    const bodies = [
      '{"__proto__": {"polluted": true}}',
      '{"ok": {"nested": {"__proto__": {"polluted": true}}}}',
      '{"constructor": {"prototype": {"polluted": true}}}',
      '{"list": [{"__proto__": {"polluted": true}}]}',
    ];
    for (const body of bodies) {
      const response = await api('/api/devices/dev-1/state/desired', { method: 'PATCH', body, headers: { 'if-match': '2' } });
      expect(response.status, body).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('forbidden-key');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    // Nothing was written: the version did not move.
    expect((await api('/api/devices/dev-1/state')).headers.get('etag')).toBe('"2"');
  });

  it('refuses a body over the size limit with 413', async () => {
    const response = await api('/api/devices/dev-1/state/desired', { method: 'PATCH', body: `{"a":"${'x'.repeat(70 * 1024)}"}`, headers: { 'if-match': '2' } });
    expect(response.status).toBe(413);
  });
});

describe('events', () => {
  it('pages through a time range with a cursor and refuses bad parameters', async () => {
    const result = await cloud.context.ingest.ingest('dev-2', 1, events(1, 250));
    expect(result).toMatchObject({ outcome: 'committed', inserted: 250, duplicates: 0 });
    const seen: number[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const response = await api(`/api/devices/dev-2/events?limit=100${cursor === '' ? '' : `&cursor=${cursor}`}`);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { events: Array<{ seq: number; fields: { n: number } }>; nextCursor: string | null };
      seen.push(...page.events.map((e) => e.seq));
      cursor = page.nextCursor;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));

    const ranged = (await (await api(`/api/devices/dev-2/events?from=${t0 + 10_000}&to=${new Date(t0 + 15_000).toISOString()}`)).json()) as { events: Array<{ seq: number }> };
    expect(ranged.events.map((e) => e.seq)).toEqual([10, 11, 12, 13, 14]);

    for (const query of ['limit=0', 'limit=5000', 'limit=abc', 'cursor=%%%', 'cursor=bm9wZQ', 'from=notadate']) {
      expect((await api(`/api/devices/dev-2/events?${query}`)).status, query).toBe(400);
    }
    expect((await api('/api/devices/nobody/events')).status).toBe(404);
  });

  it('dedupes a replay on (device, epoch, seq) and counts it in /metrics', async () => {
    const replay = await cloud.context.ingest.ingest('dev-2', 1, events(241, 20));
    expect(replay).toMatchObject({ outcome: 'committed', inserted: 10, duplicates: 10 });
    const text = await (await api('/metrics', { auth: null })).text();
    expect(text).toMatch(/^tandem_ingest_events_total 260$/m);
    expect(text).toMatch(/^tandem_ingest_duplicates_total 10$/m);
    expect(text).toMatch(/^tandem_mqtt_connected_devices 0$/m);
    expect(text).toContain('# TYPE tandem_c2d_queue_depth gauge');
  });
});

describe('cloud-to-device messages', () => {
  it('queues in order, lists, validates, and reports expiry', async () => {
    const post = (body: unknown, device = 'dev-1'): Promise<Response> => api(`/api/devices/${device}/messages`, { method: 'POST', body: JSON.stringify(body) });
    const first = await post({ body: { cmd: 'blink', times: 3 }, ttlSec: 600 });
    expect(first.status).toBe(201);
    expect(await first.json()).toMatchObject({ seq: 1 });
    const second = await post({ body: 'short-lived', ttlSec: 1 });
    expect(((await second.json()) as { seq: number }).seq).toBe(2);
    for (const bad of [{ body: 1 }, { body: 1, ttlSec: '10' }, { body: 1, ttlSec: 0 }, { body: 1, ttlSec: 1.5 }, { ttlSec: 5 }, [1]]) {
      expect((await post(bad)).status, JSON.stringify(bad)).toBe(400);
    }
    expect((await post({ body: 'x'.repeat(2000), ttlSec: 5 })).status).toBe(400);
    expect((await post({ body: 1, ttlSec: 5 }, 'nobody')).status).toBe(404);

    const metricsBefore = await (await api('/metrics', { auth: null })).text();
    expect(metricsBefore).toMatch(/^tandem_c2d_queue_depth 2$/m);
    await waitFor(
      async () => {
        const list = (await (await api('/api/devices/dev-1/messages')).json()) as { messages: Array<{ seq: number; status: string }> };
        return list.messages.find((m) => m.seq === 2)?.status === 'expired';
      },
      4000,
      'message 2 to expire',
    );
    const list = (await (await api('/api/devices/dev-1/messages')).json()) as { messages: Array<{ seq: number; status: string; body: unknown }> };
    expect(list.messages.map((m) => [m.seq, m.status])).toEqual([
      [1, 'queued'],
      [2, 'expired'],
    ]);
    expect(list.messages[0]!.body).toEqual({ cmd: 'blink', times: 3 });
    // The metric counts an expiry once the repository made it durable: a moment after the row reads
    // 'expired' on the same connection.
    await waitFor(async () => /^tandem_c2d_expired_total 1$/m.test(await (await api('/metrics', { auth: null })).text()), 2000, 'the expiry metric');
  });
});

describe('live stream (SSE)', () => {
  it('streams committed events and desired changes, filtered by device', async () => {
    const controller = new AbortController();
    const response = await fetch(`${base}/api/events/stream?deviceId=dev-1&access_token=${token}`, { signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    const readUntil = async (needle: string): Promise<void> => {
      while (!text.includes(needle)) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error('stream ended');
        text += new TextDecoder().decode(chunk.value);
      }
    };
    await readUntil(': tandem live stream');
    await cloud.context.ingest.ingest('dev-2', 9, events(1, 1)); // another device: filtered out
    await cloud.context.ingest.ingest('dev-1', 3, events(42, 1));
    await readUntil('event: event');
    const data = text.split('\n').find((line) => line.startsWith('data: ') && line.includes('"type":"event"'))!;
    expect(JSON.parse(data.slice(6))).toMatchObject({ type: 'event', deviceId: 'dev-1', epoch: 3, seq: 42, fields: { n: 42 } });
    expect(text).not.toContain('"deviceId":"dev-2"');

    await api('/api/devices/dev-1/state/desired', { method: 'PATCH', body: '{"mode":"eco"}', headers: { 'if-match': '2' } });
    await readUntil('event: desired');
    expect(text).toContain('"keys":["mode"]');
    controller.abort();
    await reader.cancel().catch(() => {});
  });

  it('refuses the stream without a token', async () => {
    expect((await api('/api/events/stream', { auth: null })).status).toBe(401);
  });
});

describe('OpenAPI document', () => {
  it('is OpenAPI 3 and describes every route with its methods', async () => {
    const doc = (await (await api('/api/openapi.json', { auth: null })).json()) as { openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/devices',
        '/api/devices/{id}',
        '/api/devices/{id}/state',
        '/api/devices/{id}/state/desired',
        '/api/devices/{id}/events',
        '/api/devices/{id}/messages',
        '/api/devices/{id}/rpc',
        '/api/downstream',
        '/api/downstream/{route}/dead-letters',
        '/api/rpc/routes',
        '/api/templates',
        '/api/events/stream',
        '/api/openapi.json',
        '/healthz',
        '/metrics',
      ].sort(),
    );
    expect(Object.keys(doc.paths['/api/devices/{id}/messages']!).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/devices/{id}/state/desired']!.patch!.responses).sort()).toEqual(['200', '400', '401', '404', '409', '428']);
  });
});
