// HTTP additions of the cloud: templates with hashes and fields, RPC routes without secrets, a
// device's RPC log, downstream status without routes, and the device's reported `status` key
// following its committed device-status events.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { templateHashHex } from '../../firmware/protocol/template.ts';
import { telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { temporaryDir, waitFor } from './helpers.ts';

const temp = temporaryDir('tandem-http-rpc-');
let cloud: RunningCloud;
const t0 = Date.UTC(2026, 10, 27, 12, 0, 0);

function api(path: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${cloud.httpPort}${path}`, { headers: { authorization: `Bearer ${cloud.adminToken}` } });
}

beforeAll(async () => {
  process.env.TANDEM_TEST_WEATHER_KEY = 'super-secret-weather-key';
  const routesPath = join(temp.dir, 'rpc-routes.json');
  writeFileSync(routesPath, JSON.stringify({
    routes: {
      weather: { url: 'https://user:pw@api.weather.example/v1/{city}?key=${TANDEM_TEST_WEATHER_KEY}', method: 'GET', headers: { 'x-api-key': '${TANDEM_TEST_WEATHER_KEY}' } },
      notify: { url: 'http://127.0.0.1:9/notify', method: 'POST', allowPrivate: true, timeoutMs: 1000 },
    },
  }));
  cloud = await startCloud({ dataDir: temp.dir, mqttPort: 0, httpPort: 0, mqttHost: '127.0.0.1', httpHost: '127.0.0.1', log: () => {}, rpcRoutesPath: routesPath });
  await provisionDevice(cloud.context.repository, 'dev-1', { hashCost: 1024 });
});

afterAll(async () => {
  await cloud.stop();
  temp.remove();
});

describe('GET /api/templates', () => {
  it('lists every template with its id, version, content hash, typed table and fields', async () => {
    const response = await api('/api/templates');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { templates: Array<{ name: string; id: number; version: number; hash: string; table: string; fields: Array<Record<string, unknown>> }> };
    const telemetry = body.templates.find((t) => t.name === 'telemetry')!;
    expect(telemetry).toMatchObject({ id: 1, version: 1, hash: templateHashHex(telemetryTemplate.hash), table: 'telemetry_v1' });
    expect(telemetry.fields).toContainEqual(expect.objectContaining({ name: 'temp', type: 'fixed', min: -40, max: 125, resolution: 0.1, unit: 'degC' }));
    expect(body.templates.map((t) => t.name)).toEqual(expect.arrayContaining(['device-status', 'power-meter', 'events-dropped']));
    expect((await fetch(`http://127.0.0.1:${cloud.httpPort}/api/templates`)).status).toBe(401);
  });
});

describe('GET /api/rpc/routes', () => {
  it('shows names, methods and hosts, never headers, credentials, paths or secrets', async () => {
    const text = await (await api('/api/rpc/routes')).text();
    expect(text).not.toContain('super-secret-weather-key');
    expect(text).not.toContain('pw@');
    expect(text).not.toContain('x-api-key');
    const body = JSON.parse(text) as { routes: Array<Record<string, unknown>> };
    expect(body.routes).toEqual([
      { name: 'notify', method: 'POST', host: 'http://127.0.0.1:9', timeoutMs: 1000, maxResponseBytes: 4096, allowPrivate: true },
      { name: 'weather', method: 'GET', host: 'https://api.weather.example', timeoutMs: 5000, maxResponseBytes: 4096, allowPrivate: false },
    ]);
  });
});

describe('GET /api/devices/{id}/rpc', () => {
  it('is the device\'s RPC log, newest first, paged by limit', async () => {
    const repository = cloud.context.repository;
    await repository.createRpcRequest({ deviceId: 'dev-1', idempotencyKey: '1:1', route: 'weather', args: { city: 'Oslo' }, createdAtMs: t0, expiresAtMs: t0 + 60_000 });
    await repository.createRpcRequest({ deviceId: 'dev-1', idempotencyKey: '1:2', route: 'notify', args: null, createdAtMs: t0 + 1000, expiresAtMs: t0 + 61_000 });
    await repository.completeRpcRequest('dev-1', '1:1', 'done', { status: 0, body: { temp: 3 } });
    const body = (await (await api('/api/devices/dev-1/rpc')).json()) as { requests: Array<Record<string, unknown>> };
    expect(body.requests.map((r) => [r.idempotencyKey, r.route, r.status])).toEqual([['1:2', 'notify', 'pending'], ['1:1', 'weather', 'done']]);
    expect(body.requests[1]!.result).toEqual({ status: 0, body: { temp: 3 } });
    const page = (await (await api('/api/devices/dev-1/rpc?limit=1')).json()) as { requests: unknown[] };
    expect(page.requests).toHaveLength(1);
    expect((await api('/api/devices/nobody/rpc')).status).toBe(404);
    expect((await api('/api/devices/dev-1/rpc?limit=9999')).status).toBe(400);
  });
});

describe('GET /api/downstream', () => {
  it('is an empty list when no routes are configured; dead letters of an unknown route are 404', async () => {
    expect(await (await api('/api/downstream')).json()).toEqual({ routes: [] });
    expect((await api('/api/downstream/x/dead-letters')).status).toBe(404);
  });
});

describe('device-status events', () => {
  it('become the reported state key `status`; an older status never overwrites a newer one', async () => {
    const status = (uptimeSec: number) => ({
      ts: t0, connected: true, lastSyncTs: t0, lastSyncOutcome: 'ok', cacheDepth: 0, cacheBytes: 0, oldestAgeSec: 0,
      drops: 0, duplicates: 0, conflicts: 0, bootEpoch: 4, uptimeSec,
    });
    const ingest = cloud.context.ingest;
    await ingest.ingest('dev-1', 4, [
      { seq: 10, templateId: 'telemetry', ts: t0, fields: {} },
      { seq: 11, templateId: 'device-status', ts: t0, fields: status(100) },
      { seq: 12, templateId: 'device-status', ts: t0, fields: status(200) },
    ]);
    const reported = async (): Promise<unknown> => {
      const state = (await (await api('/api/devices/dev-1/state')).json()) as { entries: Array<{ key: string; reportedValue: unknown }> };
      return state.entries.find((e) => e.key === 'status')?.reportedValue;
    };
    await waitFor(async () => (await reported()) !== undefined, 3000, 'status key');
    expect(await reported()).toEqual(status(200));
    // A replayed older status (lower seq of the same epoch) is stale.
    await ingest.ingest('dev-1', 4, [{ seq: 5, templateId: 'device-status', ts: t0, fields: status(50) }]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await reported()).toEqual(status(200));
    // A new boot epoch is newer even with a small seq.
    await ingest.ingest('dev-1', 5, [{ seq: 1, templateId: 'device-status', ts: t0, fields: status(1) }]);
    await waitFor(async () => JSON.stringify(await reported()) === JSON.stringify(status(1)), 3000, 'status of the new epoch');
  });
});
