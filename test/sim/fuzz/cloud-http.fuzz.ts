// Seeded fuzzer for the cloud's HTTP API: random methods, paths (the API's own routes with odd ids,
// encodings, traversal and query strings, and random ones), headers (token right, wrong or
// missing, If-Match, content types) and bodies (valid, random JSON, garbage, large) against a
// running cloud stub. Every answer must be a 2xx, 3xx or 4xx with a JSON body where it says JSON,
// never a 5xx, a hang or a dead server; nothing stored may break the API's own rules.
// `npm run fuzz -- cloud-http --cases N`; a short seeded run is in cloud-fuzz.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { provisionDevice } from '../../../cloud-stub/provisioning.ts';
import { startCloud } from '../../../cloud-stub/server.ts';
import { cloudMessagesQueuedPerDeviceMax } from '../../../firmware/protocol/limits.ts';
import { seededRandom } from '../../../hal-mocks/flash-simulator.ts';
import { runFuzzInChild, type AsyncFuzzResult } from './run-in-child.ts';

export const summary = 'cloud HTTP API (cloud-stub/http-api.ts): methods, paths, headers, bodies';

/** Send paths starting with '//' (they crash the cloud today: http-crash.test.ts). */
const sendCrashingPaths = process.env.TANDEM_FUZZ_SEND_CRASHING === '1';

const routes = [
  '/api/devices', '/api/devices/{id}', '/api/devices/{id}/state', '/api/devices/{id}/state/desired', '/api/devices/{id}/events',
  '/api/devices/{id}/messages', '/api/devices/{id}/rpc', '/api/templates', '/api/rpc/routes', '/api/downstream',
  '/api/downstream/{route}/dead-letters', '/api/events/stream', '/metrics', '/api/openapi.json', '/healthz',
];
const methods = ['GET', 'GET', 'GET', 'POST', 'POST', 'PATCH', 'PATCH', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'FOO'];
const ids = ['hf-0', 'hf-0', 'hf-1', 'nobody', '', '%00', '..', '%2e%2e', 'a%2Fb', '%E0%A4%A', '%', '%zz', 'x'.repeat(300), '%F0%9F%98%80', '%20', 'hf-0;drop', '{id}'];
const queries = [
  '', '', '?limit=5', '?limit=0', '?limit=-1', '?limit=1e99', '?limit=abc', '?from=2020-01-01', '?from=notadate', '?to=9999999999999999999',
  '?cursor=', '?cursor=%%%', '?cursor=MTIzLjQ1Ng', '?cursor=' + Buffer.from('1.2').toString('base64url'), '?access_token=x', '?a=1&a=2', '?%ff=%ff',
];

interface Answer {
  status: number;
  contentType: string;
  body: Buffer;
}

function send(port: number, method: string, path: string, headers: Record<string, string>, body: Buffer | null): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      const contentType = String(response.headers['content-type'] ?? '');
      if (contentType.startsWith('text/event-stream')) {
        // A live stream never ends: its headers are the answer.
        response.destroy();
        resolve({ status: response.statusCode ?? 0, contentType, body: Buffer.alloc(0) });
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, contentType, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`no answer within 5 s to ${method} ${path}`)));
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

function randomJson(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 2 ? 5 : 8));
  switch (pick) {
    case 0: return null;
    case 1: return next() < 0.5;
    case 2: return [0, -1, 1.5, 1e300, -0, 2 ** 53, Math.floor(next() * 1000)][Math.floor(next() * 7)];
    case 3: return ['', 'led', 'x'.repeat(Math.floor(next() * 3000)), '\u0000', '\ud800', '<script>'][Math.floor(next() * 6)];
    case 4: return 'ttlSec';
    case 5: return Array.from({ length: Math.floor(next() * 4) }, () => randomJson(next, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      const keys = ['body', 'ttlSec', 'led', 'reportIntervalSec', 'route', 'args', 'a'.repeat(80), '__proto__', 'constructor', 'x.y', ''];
      for (let i = Math.floor(next() * 4); i > 0; i--) object[keys[Math.floor(next() * keys.length)]!] = randomJson(next, depth + 1);
      return object;
    }
  }
}

export async function fuzzAsync(seed: number, cases: number): Promise<AsyncFuzzResult> {
  const next = seededRandom(seed);
  const below = (n: number): number => Math.floor(next() * n);
  const choose = <T>(items: readonly T[]): T => items[below(items.length)]!;
  const dataDir = mkdtempSync(join(tmpdir(), 'tandem-fuzz-http-'));
  const cloud = await startCloud({ dataDir, mqttPort: 0, mqttHost: '127.0.0.1', httpPort: 0, httpHost: '127.0.0.1', log: () => {} });
  const result: AsyncFuzzResult = { cases: 0, codes: {} };
  try {
    for (const id of ['hf-0', 'hf-1']) await provisionDevice(cloud.context.repository, id, { hashCost: 1024 });
    const port = cloud.httpPort;
    const token = cloud.adminToken;
    for (let i = 0; i < cases; i++) {
      const method = choose(methods);
      let path = choose(routes).replace('{id}', choose(ids)).replace('{route}', choose(['weather', '', '%', 'x'.repeat(100)])) + choose(queries);
      const mangle = next();
      if (mangle < 0.05) path = path.replace('/api', '/api/');
      else if (mangle < 0.1) path = path + '/';
      else if (mangle < 0.13) path = '/' + Array.from({ length: 1 + below(4) }, () => choose(['api', 'devices', '..', '%2F', 'x', ''])).join('/');
      else if (mangle < 0.15) path = path.toUpperCase();
      // Known open issue (http-crash.test.ts): a path starting with '//' that is no valid URL
      // authority crashes the whole cloud process in the dashboard handler. Until it is fixed such
      // paths are counted, not sent, so the run can go on; set sendCrashingPaths to reproduce.
      if (path.startsWith('//') && !sendCrashingPaths) {
        result.codes['skipped: //path (known crash)'] = (result.codes['skipped: //path (known crash)'] ?? 0) + 1;
        result.cases++;
        continue;
      }
      const headers: Record<string, string> = {};
      const auth = next();
      if (auth < 0.75) headers.authorization = `Bearer ${token}`;
      else if (auth < 0.85) headers.authorization = `Bearer ${token.slice(0, -1)}x`;
      else if (auth < 0.9) headers.authorization = choose(['Bearer', 'Basic abc', 'bearer ' + token, `Bearer  ${token}`, 'Bearer \u00ff']);
      if (next() < 0.5) headers['if-match'] = choose(['"0"', '"1"', '0', 'W/"2"', '*', '"', '"99999999999999999999"', 'abc', '']);
      let body: Buffer | null = null;
      if (method !== 'GET' && method !== 'HEAD' && next() < 0.9) {
        const kind = next();
        if (kind < 0.3) body = Buffer.from(JSON.stringify(choose([{ body: { k: 1 }, ttlSec: 60 }, { led: true }, { reportIntervalSec: 30 }, { route: 'x', args: {} }])));
        else if (kind < 0.75) body = Buffer.from(JSON.stringify(randomJson(next, 0)) ?? 'null');
        else if (kind < 0.9) body = Buffer.from(Array.from({ length: below(200) }, () => below(256)));
        else body = Buffer.alloc(20_000 + below(2_000_000), 0x20);
        headers['content-type'] = choose(['application/json', 'application/json', 'text/plain', 'application/json; charset=latin1', '']);
        if (headers['content-type'] === '') delete headers['content-type'];
      }
      let answer: Answer;
      try {
        answer = await send(port, method, path, headers, body);
      } catch (error) {
        throw new Error(`case ${i}: ${method} ${path}: ${(error as Error).message}`);
      }
      result.codes[String(answer.status)] = (result.codes[String(answer.status)] ?? 0) + 1;
      // Known open issue (regressions.test.ts): a path starting with '//' that is no valid
      // authority makes `new URL` throw, answered 500. Tallied so the run goes on past it.
      if (answer.status === 500 && path.startsWith('//') && (method === 'HEAD' || answer.body.toString('utf8').includes('Invalid URL'))) {
        result.codes['known issue: 500 on a //path'] = (result.codes['known issue: 500 on a //path'] ?? 0) + 1;
        result.cases++;
        continue;
      }
      if (answer.status >= 500 || answer.status < 200) {
        throw new Error(`case ${i}: ${method} ${path} ${JSON.stringify(headers).slice(0, 300)} body ${body === null ? 'none' : `${body.length} bytes`} answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      }
      if (method !== 'HEAD' && answer.contentType.startsWith('application/json') && answer.body.length > 0) {
        try {
          JSON.parse(answer.body.toString('utf8'));
        } catch {
          throw new Error(`case ${i}: ${method} ${path} answered ${answer.status} with a JSON content type and a body that is not JSON`);
        }
      }
      result.cases++;
    }
    // Still serving, and nothing stored breaks the API's own rules.
    const health = await send(port, 'GET', '/api/devices', { authorization: `Bearer ${token}` }, null);
    if (health.status !== 200) throw new Error(`after the run GET /api/devices answered ${health.status}`);
    for (const id of ['hf-0', 'hf-1']) {
      const messages = await cloud.context.repository.listMessages(id);
      if (messages.filter((m) => m.status === 'queued').length > cloudMessagesQueuedPerDeviceMax) throw new Error(`${id}: more than ${cloudMessagesQueuedPerDeviceMax} messages queued`);
      const state = await cloud.context.repository.getState(id);
      for (const entry of state?.entries ?? []) {
        if (!/^[A-Za-z0-9_.-]{1,64}$/.test(entry.key)) throw new Error(`${id}: desired key ${JSON.stringify(entry.key)} stored`);
      }
    }
    return result;
  } finally {
    await cloud.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** For `npm run fuzz -- cloud-http`: the async loop in a child process (the runner is synchronous). */
export function fuzz(seed: number, cases: number): AsyncFuzzResult {
  return runFuzzInChild(fileURLToPath(import.meta.url), seed, cases);
}
