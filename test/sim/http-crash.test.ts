// Regression for a crash the HTTP fuzzer found (`npm run fuzz -- cloud-http --seed 3 --cases 10000`):
// a request path such as `////%2F` makes `new URL(path, base)` throw in the dashboard handler
// (cloud-stub/dashboard/serve.ts), outside any catch, and the whole cloud process exits. The cloud
// runs as a child process here, so the crash cannot take the test worker with it.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ChildSimCloud, CountingUpstream } from './sim-cloud.ts';

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    req.setTimeout(3000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

describe('HTTP requests the fuzzer found', () => {
  // Also `npm run fuzz -- cloud-http --seed 1 --cases 10000` (case 3175): `//%2F/%2F/x` answered
  // 500 "Invalid URL" from the API router before the dashboard handler existed; now it crashes too.
  it('paths like ////%2F and //%2F/x get a 4xx and the cloud keeps serving', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tandem-crash-'));
    const upstream = new CountingUpstream();
    await upstream.start();
    const cloud = new ChildSimCloud(dataDir, upstream);
    try {
      await cloud.start();
      const port = (cloud as unknown as { ports: { http: number } }).ports.http;
      expect(await get(port, '/healthz')).toBe(200);
      for (const path of ['//%2F/x', '////%2F']) {
        const status = await get(port, path);
        expect(status, path).toBeGreaterThanOrEqual(400);
        expect(status, path).toBeLessThan(500);
        expect(await get(port, '/healthz'), `alive after ${path}`).toBe(200);
      }
    } finally {
      await cloud.close();
      await upstream.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 30_000);
});
