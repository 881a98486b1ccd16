// The RPC proxy: runs HTTP requests on a device's behalf, through named routes from a config file,
// with secrets the device never holds (taken from the cloud's environment). Only configured routes
// run; private, loopback and link-local targets are refused unless a route allows them; every call
// has a timeout and a response size limit. The sync session stores results and delivers them.
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { rpcStatusError, rpcStatusOk, rpcStatusRefused, rpcStatusTimeout } from '../firmware/protocol/sync-messages.ts';
import type { RpcRunner } from './sync-session.ts';

export interface RpcRoute {
  /** URL template: `{name}` is replaced by the URL-encoded argument `name`. */
  url: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Header values may name environment variables as `${NAME}`: the secrets stay in the cloud. */
  headers: Record<string, string>;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Let this route reach private, loopback and link-local addresses (off by default). */
  allowPrivate: boolean;
}

export interface RpcRoutes {
  routes: Record<string, RpcRoute>;
}

export class RpcConfigError extends Error {}

const routeNamePattern = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks a parsed routes file; throws RpcConfigError naming the route and field. */
export function parseRpcRoutes(value: unknown, env: NodeJS.ProcessEnv = process.env): RpcRoutes {
  if (typeof value !== 'object' || value === null || typeof (value as { routes?: unknown }).routes !== 'object') {
    throw new RpcConfigError('RPC routes: expected {"routes": {NAME: {url, method, ...}}}');
  }
  const routes: Record<string, RpcRoute> = Object.create(null) as Record<string, RpcRoute>;
  for (const [name, raw] of Object.entries((value as { routes: Record<string, unknown> }).routes)) {
    const where = `RPC route '${name}'`;
    if (!routeNamePattern.test(name)) throw new RpcConfigError(`${where}: names are 1 to 64 characters of A-Z a-z 0-9 _ . -`);
    if (typeof raw !== 'object' || raw === null) throw new RpcConfigError(`${where}: must be an object`);
    const route = raw as Record<string, unknown>;
    if (typeof route.url !== 'string' || !/^https?:\/\//.test(route.url)) throw new RpcConfigError(`${where}: url must start with http:// or https://`);
    const method = route.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') throw new RpcConfigError(`${where}: method must be GET, POST, PUT or DELETE`);
    const headers: Record<string, string> = {};
    for (const [header, template] of Object.entries((route.headers ?? {}) as Record<string, unknown>)) {
      if (typeof template !== 'string') throw new RpcConfigError(`${where}: header ${header} must be a string`);
      headers[header] = template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, variable: string) => {
        const secret = env[variable];
        if (secret === undefined) throw new RpcConfigError(`${where}: header ${header} needs the environment variable ${variable}, which is not set`);
        return secret;
      });
    }
    const timeoutMs = route.timeoutMs ?? 5000;
    const maxResponseBytes = route.maxResponseBytes ?? 4096;
    if (typeof timeoutMs !== 'number' || timeoutMs < 1 || timeoutMs > 60_000) throw new RpcConfigError(`${where}: timeoutMs must be 1 to 60000`);
    if (typeof maxResponseBytes !== 'number' || maxResponseBytes < 1 || maxResponseBytes > 65_536) throw new RpcConfigError(`${where}: maxResponseBytes must be 1 to 65536`);
    if (route.allowPrivate !== undefined && typeof route.allowPrivate !== 'boolean') throw new RpcConfigError(`${where}: allowPrivate must be true or false`);
    routes[name] = { url: route.url, method, headers, timeoutMs, maxResponseBytes, allowPrivate: route.allowPrivate === true };
  }
  return { routes };
}

export function loadRpcRoutes(path: string, env: NodeJS.ProcessEnv = process.env): RpcRoutes {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RpcConfigError(`RPC routes: cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RpcConfigError(`RPC routes: ${path} is not JSON: ${(error as Error).message}`);
  }
  return parseRpcRoutes(value, env);
}

/** Whether an IP address is private, loopback, link-local, unspecified or otherwise not public. */
export function isPrivateAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  if (version === 6) {
    const lower = address.toLowerCase();
    if (lower === '::1' || lower === '::') return true;
    if (lower.startsWith('::ffff:')) return isPrivateAddress(lower.slice(7));
    return lower.startsWith('fc') || lower.startsWith('fd') || lower.startsWith('fe8') || lower.startsWith('fe9') || lower.startsWith('fea') || lower.startsWith('feb') || lower.startsWith('ff');
  }
  return true;
}

function fillUrl(template: string, args: unknown): string {
  const values = typeof args === 'object' && args !== null ? (args as Record<string, unknown>) : {};
  return template.replace(/\{([A-Za-z0-9_]+)\}/g, (_, name: string) => {
    const value = Object.prototype.hasOwnProperty.call(values, name) ? values[name] : '';
    return encodeURIComponent(typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '');
  });
}

/** Builds the RpcRunner the sync session calls. */
export function createRpcProxy(config: RpcRoutes): RpcRunner {
  return async (deviceId, routeName, args) => {
    const route = Object.prototype.hasOwnProperty.call(config.routes, routeName) ? config.routes[routeName] : undefined;
    if (route === undefined) return { status: rpcStatusRefused, body: { error: `no RPC route '${routeName}'` } };
    const url = new URL(fillUrl(route.url, args));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let address: string;
    try {
      address = isIP(host) ? host : (await lookup(host)).address;
    } catch (error) {
      return { status: rpcStatusError, body: { error: `cannot resolve ${host}: ${(error as Error).message}` } };
    }
    if (!route.allowPrivate && isPrivateAddress(address)) {
      return { status: rpcStatusRefused, body: { error: `route '${routeName}' may not reach the private address ${address}` } };
    }
    const body = route.method === 'GET' || route.method === 'DELETE' ? null : Buffer.from(JSON.stringify(args ?? null));
    return new Promise((resolve) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      let settled = false;
      const finish = (result: { status: number; body: unknown }) => {
        if (settled) return;
        settled = true;
        resolve(result);
      };
      const req = send(
        url,
        {
          method: route.method,
          headers: { ...route.headers, 'x-tandem-device': deviceId, ...(body !== null ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) },
          // Connect to the address that was checked, so a second DNS answer cannot redirect it.
          lookup: (_hostname, _options, callback) => callback(null, [{ address, family: isIP(address) }]),
          timeout: route.timeoutMs,
        },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > route.maxResponseBytes) {
              req.destroy();
              finish({ status: rpcStatusError, body: { error: `response larger than ${route.maxResponseBytes} bytes` } });
              return;
            }
            chunks.push(chunk);
          });
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((response.headers['content-type'] ?? '').includes('json')) {
              try {
                parsed = JSON.parse(text) as unknown;
              } catch {
                parsed = text;
              }
            }
            const ok = response.statusCode !== undefined && response.statusCode >= 200 && response.statusCode < 300;
            finish({ status: ok ? rpcStatusOk : rpcStatusError, body: ok ? parsed : { error: `upstream answered ${response.statusCode}`, body: parsed } });
          });
          response.on('error', (error) => finish({ status: rpcStatusError, body: { error: error.message } }));
        },
      );
      req.on('timeout', () => {
        req.destroy();
        finish({ status: rpcStatusTimeout, body: { error: `no answer within ${route.timeoutMs} ms` } });
      });
      req.on('error', (error) => finish({ status: rpcStatusError, body: { error: error.message } }));
      if (body !== null) req.write(body);
      req.end();
    });
  };
}
