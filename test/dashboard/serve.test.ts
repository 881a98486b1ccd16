// The dashboard's HTTP handler on its own: static files, the root redirect, fleet endpoints behind
// the admin token, and paths `new URL` refuses (found by the HTTP fuzzer) answered 400, not thrown.
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardHandler, type FleetControls } from '../../cloud-stub/dashboard/serve.ts';

let server: Server;
let port = 0;
const calls: string[] = [];

const fleet: FleetControls = {
  devices: () => [],
  setNetworkOnline: (id, online) => (calls.push(`network ${id} ${online}`), id === 'dev-1'),
  powerCycle: (id) => (calls.push(`power ${id}`), id === 'dev-1'),
  pressButton: (id) => (calls.push(`button ${id}`), id === 'dev-1'),
};

beforeAll(async () => {
  const handle = createDashboardHandler({ adminToken: 'secret-token', fleet });
  server = createServer((req, res) => {
    if (!handle(req, res)) {
      res.writeHead(418);
      res.end('api');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  port = (server.address() as { port: number }).port;
});

afterAll(() => {
  server.close();
});

function send(method: string, path: string, body?: string, token?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent: false, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('dashboard handler', () => {
  it('serves the page and its files, redirects the root, passes the rest to the API', async () => {
    expect((await send('GET', '/')).headers.location).toBe('/dashboard/');
    const page = await send('GET', '/dashboard/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    for (const file of ['app.js', 'charts.js', 'style.css']) expect((await send('GET', `/dashboard/${file}`)).status).toBe(200);
    expect((await send('POST', '/dashboard/')).status).toBe(405);
    expect((await send('GET', '/api/devices')).status).toBe(418);
  });

  it('guards the fleet controls with the admin token and checks their bodies', async () => {
    expect((await send('GET', '/fleet/devices')).status).toBe(401);
    expect((await send('GET', '/fleet/devices', undefined, 'wrong')).status).toBe(401);
    expect((await send('GET', '/fleet/devices', undefined, 'secret-token')).status).toBe(200);
    expect((await send('POST', '/fleet/devices/dev-1/network', '{"online":"no"}', 'secret-token')).status).toBe(400);
    expect((await send('POST', '/fleet/devices/dev-1/network', 'not json', 'secret-token')).status).toBe(400);
    expect((await send('POST', '/fleet/devices/dev-1/network', '{"online":false}', 'secret-token')).status).toBe(200);
    expect((await send('POST', '/fleet/devices/dev-1/power-cycle', undefined, 'secret-token')).status).toBe(200);
    expect((await send('POST', '/fleet/devices/nope/button', undefined, 'secret-token')).status).toBe(404);
    expect((await send('GET', '/fleet/devices/dev-1/button', undefined, 'secret-token')).status).toBe(405);
    expect(calls).toEqual(['network dev-1 false', 'power dev-1', 'button nope']);
  });

  it('answers paths new URL refuses with 400 and keeps serving', async () => {
    for (const path of ['////%2F', '//%2F/x']) {
      const answer = await send('GET', path);
      expect(answer.status, path).toBe(400);
      expect(JSON.parse(answer.text).error.code).toBe('bad-path');
    }
    expect((await send('GET', '/dashboard/')).status).toBe(200);
  });
});
