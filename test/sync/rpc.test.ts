// Proxied RPC: the device asks, the cloud runs a configured HTTP route with secrets the device never
// holds, and the result comes back through the sync session; one run per idempotency key.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rpcStatusExpired, rpcStatusOk, rpcStatusRefused, rpcStatusTimeout } from '../../firmware/protocol/sync-messages.ts';
import { createRpcProxy, isPrivateAddress, parseRpcRoutes, RpcConfigError } from '../../cloud-stub/rpc-proxy.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { syncSessionFactory } from '../../cloud-stub/sync-session.ts';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { createDefaultRegistry } from '../../firmware/protocol/templates/index.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { temporaryDir } from '../cloud/helpers.ts';
import { createTestDevice, waitFor } from './helpers.ts';

describe('RPC routes config', () => {
  it('takes secrets from the environment and names what is wrong', () => {
    const config = parseRpcRoutes({ routes: { weather: { url: 'https://api.example.com/w?c={city}', headers: { authorization: 'Bearer ${TOKEN}' } } } }, { TOKEN: 's3cret' });
    expect(config.routes.weather!.headers.authorization).toBe('Bearer s3cret');
    expect(config.routes.weather!.allowPrivate).toBe(false);
    expect(() => parseRpcRoutes({ routes: { w: { url: 'https://x/', headers: { a: '${MISSING}' } } } }, {})).toThrow(/MISSING/);
    expect(() => parseRpcRoutes({ routes: { w: { url: 'ftp://x/' } } }, {})).toThrow(RpcConfigError);
    expect(() => parseRpcRoutes({ routes: { w: { url: 'http://x/', method: 'PATCH' } } }, {})).toThrow(/method/);
    expect(() => parseRpcRoutes({ nope: 1 }, {})).toThrow(/routes/);
  });

  it('knows private, loopback and link-local addresses', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '0.0.0.0']) {
      expect(isPrivateAddress(address), address).toBe(true);
    }
    for (const address of ['8.8.8.8', '172.32.0.1', '2001:4860:4860::8888']) expect(isPrivateAddress(address), address).toBe(false);
  });
});

describe('proxied RPC through the sync session', () => {
  let upstream: Server;
  let upstreamPort: number;
  let hits: { url: string; authorization: string | undefined; device: string | undefined }[];
  let cloud: RunningCloud;
  let temp: { dir: string; remove(): void };

  beforeEach(async () => {
    hits = [];
    upstream = createServer((req: IncomingMessage, res) => {
      hits.push({ url: req.url ?? '', authorization: req.headers.authorization, device: req.headers['x-tandem-device'] as string | undefined });
      if ((req.url ?? '').startsWith('/slow')) return; // never answers
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ city: new URL(req.url ?? '/', 'http://x').searchParams.get('city'), tempC: 4 }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    const routes = parseRpcRoutes(
      {
        routes: {
          weather: { url: `http://127.0.0.1:${upstreamPort}/weather?city={city}`, headers: { authorization: 'Bearer ${WEATHER_TOKEN}' }, allowPrivate: true },
          slow: { url: `http://127.0.0.1:${upstreamPort}/slow`, timeoutMs: 200, allowPrivate: true },
          internal: { url: `http://127.0.0.1:${upstreamPort}/internal` },
        },
      },
      { WEATHER_TOKEN: 'cloud-only-secret' },
    );
    temp = temporaryDir('tandem-rpc-');
    cloud = await startCloud({
      dataDir: temp.dir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {},
      session: syncSessionFactory({ templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate], rpc: createRpcProxy(routes) }),
    });
  });

  afterEach(async () => {
    await cloud.stop();
    upstream.close();
    temp.remove();
  });

  async function device(id: string) {
    const outcome = await provisionDevice(cloud.context.repository, id, { hashCost: 1024 });
    if (outcome.outcome !== 'created') throw new Error('provision failed');
    return createTestDevice({ deviceId: id, secret: outcome.secret, mqttHost: '127.0.0.1', mqttPort: cloud.mqttPort!, tls: false });
  }

  it('[SYNC-6] [SYNC-15] a call made while offline runs once when the device connects, with the cloud\'s secret', async () => {
    const { device: dev } = await device('rpc-a');
    const results: { status: number; body: string }[] = [];
    expect(dev.sync.call('weather', '{"city":"Oslo"}', 60, (status, body) => results.push({ status, body }))).toBeGreaterThan(0);
    dev.start();
    await waitFor(() => results.length === 1, 10_000, 'RPC result');
    expect(results[0]!.status).toBe(rpcStatusOk);
    expect(JSON.parse(results[0]!.body)).toEqual({ city: 'Oslo', tempC: 4 });
    expect(hits).toEqual([{ url: '/weather?city=Oslo', authorization: 'Bearer cloud-only-secret', device: 'rpc-a' }]);
    dev.stop();
  });

  it('[SYNC-28] a retransmitted request is answered from the stored result, never run twice', async () => {
    const { device: dev } = await device('rpc-b');
    const results: number[] = [];
    dev.sync.call('weather', '{"city":"Rome"}', 60, (status) => results.push(status));
    dev.start();
    await waitFor(() => results.length === 1, 10_000, 'first result');
    // Replay the same request id, as a device whose result got lost would.
    const stored = await cloud.context.repository.getRpcRequest('rpc-b', `${dev.epoch}:1`);
    expect(stored?.status).toBe('done');
    dev.mqtt.fail(-7);
    await waitFor(() => dev.sync.status.sessionOpen, 10_000, 'reconnected');
    expect(hits.length).toBe(1);
    dev.stop();
  });

  it('refuses unknown routes and private targets, and reports timeouts and expiry', async () => {
    const { device: dev } = await device('rpc-c');
    const results = new Map<string, number>();
    dev.sync.call('nope', '{}', 60, (status) => results.set('nope', status));
    dev.sync.call('internal', '{}', 60, (status) => results.set('internal', status));
    dev.sync.call('slow', '{}', 60, (status) => results.set('slow', status));
    dev.sync.call('weather', '{}', 0, (status) => results.set('expired', status));
    dev.start();
    await waitFor(() => results.size === 4, 10_000, 'four outcomes');
    expect(results.get('nope')).toBe(rpcStatusRefused);
    expect(results.get('internal')).toBe(rpcStatusRefused);
    expect(results.get('slow')).toBe(rpcStatusTimeout);
    expect(results.get('expired')).toBe(rpcStatusExpired);
    expect(hits.some((hit) => hit.url === '/internal')).toBe(false);
    dev.stop();
  });
});
