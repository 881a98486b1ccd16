// The downstream routes file (`tandem cloud --downstream FILE`): named routes, each a destination
// (webhook, ndjson, postgres, mqtt) plus delivery options. Secrets come from the environment as
// `${NAME}`, so the file can be committed; `publicView` shows a route without them.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import {
  downstreamAttemptTimeoutMs, downstreamBackoffMs, downstreamBackoffMsMax, downstreamBatchRowsMax, downstreamRoutesMax,
} from '../../firmware/protocol/limits.ts';
import type { DownstreamStream } from '../storage/repository.ts';

export class DownstreamConfigError extends Error {}

interface DeliveryOptions {
  /** Which logs the route follows (default both). */
  streams: DownstreamStream[];
  /** Rows per delivered batch. */
  batchMax: number;
  /** Attempts before a batch becomes a dead letter; 0 = retry until it succeeds (nothing skipped). */
  maxAttempts: number;
  backoffMs: number;
  backoffMsMax: number;
  timeoutMs: number;
  /** Where a new route starts: every stored event ('start', default) or only new ones ('now'). */
  from: 'start' | 'now';
}

export type DestinationConfig =
  | { type: 'webhook'; url: string; headers: Record<string, string> }
  | { type: 'ndjson'; dir: string }
  | { type: 'postgres'; url: string; schema: string }
  | { type: 'mqtt'; url: string; topicPrefix: string; username?: string; password?: string; qos: 0 | 1 };

export type RouteConfig = DeliveryOptions & { name: string; destination: DestinationConfig };

const routeNamePattern = /^[A-Za-z0-9_.-]{1,64}$/;
const schemaPattern = /^[a-z_][a-z0-9_]{0,62}$/;

function expandEnv(where: string, text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, variable: string) => {
    const value = env[variable];
    if (value === undefined) throw new DownstreamConfigError(`${where} needs the environment variable ${variable}, which is not set`);
    return value;
  });
}

function wholeNumber(where: string, raw: unknown, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) throw new DownstreamConfigError(`${where} must be a whole number from ${min} to ${max}`);
  return raw;
}

function text(where: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw === '') throw new DownstreamConfigError(`${where} must be a non-empty string`);
  return raw;
}

/**
 * Checks a parsed routes file: `{"routes": {NAME: {type, ...}}}`. Throws DownstreamConfigError
 * naming the route and field. Relative ndjson folders are taken from `baseDir`.
 */
export function parseDownstreamConfig(value: unknown, baseDir: string, env: NodeJS.ProcessEnv = process.env): RouteConfig[] {
  if (typeof value !== 'object' || value === null || typeof (value as { routes?: unknown }).routes !== 'object' || (value as { routes?: unknown }).routes === null) {
    throw new DownstreamConfigError('downstream routes: expected {"routes": {NAME: {"type": "webhook" | "ndjson" | "postgres" | "mqtt", ...}}}');
  }
  const entries = Object.entries((value as { routes: Record<string, unknown> }).routes);
  if (entries.length > downstreamRoutesMax) throw new DownstreamConfigError(`downstream routes: at most ${downstreamRoutesMax} routes`);
  return entries.map(([name, raw]): RouteConfig => {
    const where = `downstream route '${name}'`;
    if (!routeNamePattern.test(name)) throw new DownstreamConfigError(`${where}: names are 1 to 64 characters of A-Z a-z 0-9 _ . -`);
    if (typeof raw !== 'object' || raw === null) throw new DownstreamConfigError(`${where}: must be an object`);
    const route = raw as Record<string, unknown>;
    let destination: DestinationConfig;
    switch (route.type) {
      case 'webhook': {
        const url = expandEnv(`${where}: url`, text(`${where}: url`, route.url), env);
        if (!/^https?:\/\//.test(url)) throw new DownstreamConfigError(`${where}: url must start with http:// or https://`);
        const headers: Record<string, string> = {};
        for (const [header, template] of Object.entries((route.headers ?? {}) as Record<string, unknown>)) {
          headers[header] = expandEnv(`${where}: header ${header}`, text(`${where}: header ${header}`, template), env);
        }
        destination = { type: 'webhook', url, headers };
        break;
      }
      case 'ndjson': {
        const dir = text(`${where}: dir`, route.dir);
        destination = { type: 'ndjson', dir: isAbsolute(dir) ? dir : resolve(baseDir, dir) };
        break;
      }
      case 'postgres': {
        const url = expandEnv(`${where}: url`, text(`${where}: url`, route.url ?? '${DATABASE_URL}'), env);
        const schema = route.schema === undefined ? 'tandem_typed' : text(`${where}: schema`, route.schema);
        if (!schemaPattern.test(schema)) throw new DownstreamConfigError(`${where}: schema must be lower-case letters, digits and _ (at most 63)`);
        destination = { type: 'postgres', url, schema };
        break;
      }
      case 'mqtt': {
        const url = expandEnv(`${where}: url`, text(`${where}: url`, route.url), env);
        if (!/^mqtts?:\/\//.test(url)) throw new DownstreamConfigError(`${where}: url must start with mqtt:// or mqtts://`);
        const topicPrefix = route.topicPrefix === undefined ? 'tandem' : text(`${where}: topicPrefix`, route.topicPrefix);
        if (/[#+]/.test(topicPrefix)) throw new DownstreamConfigError(`${where}: topicPrefix must not contain MQTT wildcards`);
        const qos = route.qos ?? 1;
        if (qos !== 0 && qos !== 1) throw new DownstreamConfigError(`${where}: qos must be 0 or 1`);
        destination = {
          type: 'mqtt',
          url,
          topicPrefix,
          qos,
          username: route.username === undefined ? undefined : expandEnv(`${where}: username`, text(`${where}: username`, route.username), env),
          password: route.password === undefined ? undefined : expandEnv(`${where}: password`, text(`${where}: password`, route.password), env),
        };
        break;
      }
      default:
        throw new DownstreamConfigError(`${where}: type must be webhook, ndjson, postgres or mqtt`);
    }
    const streams = route.streams ?? ['events', 'state'];
    if (!Array.isArray(streams) || streams.length === 0 || streams.some((s) => s !== 'events' && s !== 'state')) {
      throw new DownstreamConfigError(`${where}: streams must be a non-empty list of "events" and "state"`);
    }
    const from = route.from ?? 'start';
    if (from !== 'start' && from !== 'now') throw new DownstreamConfigError(`${where}: from must be "start" or "now"`);
    const backoffMs = wholeNumber(`${where}: backoffMs`, route.backoffMs, downstreamBackoffMs, 1, downstreamBackoffMsMax);
    return {
      name,
      destination,
      streams: [...new Set(streams as DownstreamStream[])],
      batchMax: wholeNumber(`${where}: batchMax`, route.batchMax, 500, 1, downstreamBatchRowsMax),
      // A webhook gives up (dead letter) by default; the stores retry until they accept.
      maxAttempts: wholeNumber(`${where}: maxAttempts`, route.maxAttempts, destination.type === 'webhook' ? 8 : 0, 0, 1000),
      backoffMs,
      backoffMsMax: wholeNumber(`${where}: backoffMsMax`, route.backoffMsMax, Math.max(backoffMs, 30_000), backoffMs, downstreamBackoffMsMax),
      timeoutMs: wholeNumber(`${where}: timeoutMs`, route.timeoutMs, downstreamAttemptTimeoutMs, 1, 120_000),
      from,
    };
  });
}

export function loadDownstreamConfig(path: string, env: NodeJS.ProcessEnv = process.env): RouteConfig[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    throw new DownstreamConfigError(`downstream routes file ${path}: ${(error as Error).message}`);
  }
  return parseDownstreamConfig(parsed, dirname(resolve(path)), env);
}

/** A route as the HTTP API shows it: destination kind and host, never headers or passwords. */
export function publicView(route: RouteConfig): Record<string, unknown> {
  const d = route.destination;
  let target: string;
  if (d.type === 'ndjson') target = d.dir;
  else if (d.type === 'postgres') target = `${safeHost(d.url)} schema ${d.schema}`;
  else if (d.type === 'mqtt') target = `${safeHost(d.url)} topics ${d.topicPrefix}/…`;
  else target = safeHost(d.url);
  return { name: route.name, type: d.type, target, streams: route.streams, batchMax: route.batchMax, maxAttempts: route.maxAttempts };
}

/** Scheme and host of a URL, without user, password, path or query (which may hold tokens). */
export function safeHost(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '(invalid url)';
  }
}
