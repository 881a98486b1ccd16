// The HTTP API on node:http: devices, state (desired changes with If-Match), events with
// pagination, the cloud-to-device queue, a Server-Sent Events stream, Prometheus metrics and the
// OpenAPI document, which is generated from the same route table that serves the requests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  cloudMessageBytesMax,
  cloudMessagesQueuedPerDeviceMax,
  cloudMessageTtlSecMax,
  downstreamDeadLettersPageMax,
  eventsPageRowsMax,
  liveStreamBufferBytesMax,
  rpcLogPageRowsMax,
  stateKeyLengthMax,
  stateValueBytesMax,
} from '../firmware/protocol/limits.ts';
import { bearerToken, secretsEqual } from './identity.ts';
import { HttpError, isPlainObject, readJsonBody, sendError, sendJson } from './http-json.ts';
import type { LiveHub, LiveUpdate } from './live-hub.ts';
import type { Metrics } from './metrics.ts';
import type { DeviceRecord, Repository } from './storage/repository.ts';
import { templateHashHex, type Template } from '../firmware/protocol/template.ts';
import { definitionOf, tableName } from './typed-tables.ts';
import type { RpcRoutes } from './rpc-proxy.ts';
import type { RouteStatus } from './downstream/routes.ts';

export interface HttpApiContext {
  repository: Repository;
  live: LiveHub;
  metrics: Metrics;
  adminToken: string;
  isConnected(deviceId: string): boolean;
  now?: () => number;
  /** Templates the cloud decodes with (GET /api/templates). */
  templates?: Template[];
  /** Configured RPC routes (GET /api/rpc/routes shows names, methods and hosts, never headers). */
  rpcRoutes?: RpcRoutes | null;
  /** Downstream routes (GET /api/downstream); null when none are configured. */
  downstream?: { routeNames: string[]; status(): Promise<RouteStatus[]> } | null;
}

/** Scheme and host of an RPC URL template, without user info, path or query. */
function urlHost(template: string): string {
  const match = /^(https?:\/\/)(?:[^/?#@]*@)?([^/?#]*)/.exec(template);
  return match === null ? '(invalid url)' : `${match[1]}${match[2]}`;
}

function templateView(template: Template): Record<string, unknown> {
  return {
    name: template.name,
    id: template.id,
    version: template.version,
    hash: templateHashHex(template.hash),
    description: template.definition.description ?? null,
    table: tableName(template),
    fields: template.fields.map((field) => {
      const def = definitionOf(field);
      const view: Record<string, unknown> = { name: def.name, type: def.type };
      for (const key of ['unit', 'description', 'min', 'max', 'resolution', 'resolutionMs', 'values', 'maxLength'] as const) {
        if (def[key] !== undefined) view[key] = def[key];
      }
      return view;
    }),
  };
}

interface RequestContext {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  params: Record<string, string>;
}

/** What the OpenAPI document says about a route; kept next to the handler so they cannot drift. */
interface RouteDoc {
  summary: string;
  parameters?: Array<{ name: string; in: 'query' | 'header' | 'path'; required?: boolean; description: string; schema: Record<string, unknown> }>;
  requestBody?: Record<string, unknown>;
  responses: Record<string, string>;
  responseContentType?: string;
}

interface Route {
  method: 'GET' | 'POST' | 'PATCH';
  /** Path with `{name}` placeholders, as OpenAPI writes it. */
  path: string;
  /** Reachable without the admin token. */
  public?: boolean;
  doc: RouteDoc;
  handle(context: RequestContext): Promise<void>;
}

const stateKeyPattern = /^[A-Za-z0-9_.-]+$/;

function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/');
  const got = pathname.split('/');
  if (want.length !== got.length) return null;
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i < want.length; i++) {
    const segment = want[i]!;
    if (segment.startsWith('{') && segment.endsWith('}')) {
      let value: string;
      try {
        value = decodeURIComponent(got[i]!);
      } catch {
        return null;
      }
      if (value.length === 0) return null;
      params[segment.slice(1, -1)] = value;
    } else if (segment !== got[i]) {
      return null;
    }
  }
  return params;
}

/** A whole number query parameter, or undefined when absent; anything else is a 400. */
function queryInteger(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new HttpError(400, 'bad-parameter', `query parameter '${name}' must be a whole number from ${min} to ${max}, got '${raw}'`);
  }
  return value;
}

/** A time bound: milliseconds since 1970, or an ISO 8601 date. */
function queryTime(url: URL, name: string): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const asNumber = Number(raw);
  if (Number.isSafeInteger(asNumber) && asNumber >= 0) return asNumber;
  const parsed = Date.parse(raw);
  if (Number.isNaN(parsed)) throw new HttpError(400, 'bad-parameter', `query parameter '${name}' must be milliseconds since 1970 or an ISO 8601 date, got '${raw}'`);
  return parsed;
}

function encodeCursor(ts: number, id: number): string {
  return Buffer.from(`${ts}.${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { ts: number; id: number } {
  const match = /^(\d{1,16})\.(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (match === null) throw new HttpError(400, 'bad-cursor', 'cursor is not one this API returned');
  return { ts: Number(match[1]), id: Number(match[2]) };
}

/** `If-Match: "3"`, `W/"3"` or `3` → 3. */
function parseIfMatch(header: string | undefined): number | null {
  if (header === undefined) return null;
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (match === null) throw new HttpError(400, 'bad-if-match', `If-Match must be the desired version from GET .../state (its ETag), got '${header}'`);
  return Number(match[1]);
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null');
}

function deviceView(device: DeviceRecord, connected: boolean): Record<string, unknown> {
  return { ...device, connected };
}

export function createHttpApi(context: HttpApiContext): {
  handle(request: IncomingMessage, response: ServerResponse): void;
  routes: Route[];
  openApiDocument(): Record<string, unknown>;
  closeStreams(): void;
} {
  const { repository, live, metrics } = context;
  const now = context.now ?? Date.now;
  const streams = new Set<ServerResponse>();

  async function requireDevice(deviceId: string): Promise<DeviceRecord> {
    const device = await repository.getDevice(deviceId);
    if (device === null) throw new HttpError(404, 'unknown-device', `no device '${deviceId}'; provision it with \`npx tandem provision ${deviceId}\``);
    return device;
  }

  const deviceIdParam = { name: 'id', in: 'path', required: true, description: 'Device id', schema: { type: 'string' } };

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/api/devices',
      doc: { summary: 'List provisioned devices with their connection status', responses: { '200': 'The devices' } },
      async handle({ response }) {
        const devices = await repository.listDevices();
        sendJson(response, 200, { devices: devices.map((d) => deviceView(d, context.isConnected(d.deviceId))) });
      },
    },
    {
      method: 'GET',
      path: '/api/devices/{id}',
      doc: { summary: 'One device', responses: { '200': 'The device', '404': 'Unknown device' } },
      async handle({ response, params }) {
        const device = await requireDevice(params.id!);
        sendJson(response, 200, deviceView(device, context.isConnected(device.deviceId)));
      },
    },
    {
      method: 'GET',
      path: '/api/devices/{id}/state',
      doc: {
        summary: 'Reported (device-owned) and desired (cloud-owned) state with versions; the ETag is the desired version',
        responses: { '200': 'The state replica', '404': 'Unknown device' },
      },
      async handle({ response, params }) {
        const state = await repository.getState(params.id!);
        if (state === null) await requireDevice(params.id!);
        sendJson(response, 200, state, { etag: `"${state!.desiredVersion}"` });
      },
    },
    {
      method: 'PATCH',
      path: '/api/devices/{id}/state/desired',
      doc: {
        summary: 'Change desired values; delivered at the device\'s next sync',
        parameters: [{ name: 'If-Match', in: 'header', required: true, description: 'The desired version (ETag) the change is based on', schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', description: 'Key → new desired value (any JSON)', additionalProperties: true } } },
        },
        responses: {
          '200': 'Applied; the body and ETag carry the new desired version',
          '400': 'Bad body',
          '404': 'Unknown device',
          '409': 'The desired version moved on; read the state again',
          '428': 'If-Match missing',
        },
      },
      async handle({ request, response, params }) {
        const expected = parseIfMatch(request.headers['if-match']);
        if (expected === null) throw new HttpError(428, 'if-match-required', 'send If-Match with the desired version from GET .../state (its ETag)');
        const body = await readJsonBody(request);
        if (!isPlainObject(body) || Object.keys(body).length === 0) {
          throw new HttpError(400, 'bad-body', 'body must be a JSON object of key → desired value with at least one key');
        }
        const values: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
        for (const key of Object.keys(body)) {
          if (key.length > stateKeyLengthMax || !stateKeyPattern.test(key)) {
            throw new HttpError(400, 'bad-key', `state key '${key}' must be 1 to ${stateKeyLengthMax} characters of A-Z a-z 0-9 _ . -`);
          }
          if (jsonBytes(body[key]) > stateValueBytesMax) throw new HttpError(400, 'value-too-large', `value of '${key}' exceeds ${stateValueBytesMax} bytes of JSON`);
          values[key] = body[key];
        }
        const result = await repository.patchDesired(params.id!, expected, values, now());
        if (result.outcome === 'unknown-device') await requireDevice(params.id!);
        if (result.outcome === 'conflict') {
          throw new HttpError(
            409,
            'version-conflict',
            `desired version is ${result.desiredVersion}, not ${expected}; read the state again and retry`,
            { desiredVersion: result.desiredVersion },
            { etag: `"${result.desiredVersion}"` },
          );
        }
        if (result.outcome !== 'applied') throw new Error('unreachable');
        live.publish({ type: 'desired', deviceId: params.id!, desiredVersion: result.desiredVersion, keys: Object.keys(values) });
        sendJson(response, 200, { deviceId: params.id, desiredVersion: result.desiredVersion }, { etag: `"${result.desiredVersion}"` });
      },
    },
    {
      method: 'GET',
      path: '/api/devices/{id}/events',
      doc: {
        summary: 'Events of a device in time order, paginated',
        parameters: [
          { name: 'from', in: 'query', description: 'Inclusive lower bound on event time (ms since 1970 or ISO 8601)', schema: { type: 'string' } },
          { name: 'to', in: 'query', description: 'Exclusive upper bound on event time', schema: { type: 'string' } },
          { name: 'limit', in: 'query', description: `Page size, 1 to ${eventsPageRowsMax} (default 100)`, schema: { type: 'integer' } },
          { name: 'cursor', in: 'query', description: 'nextCursor of the previous page', schema: { type: 'string' } },
        ],
        responses: { '200': '{ events, nextCursor } (nextCursor null on the last page)', '400': 'Bad parameter', '404': 'Unknown device' },
      },
      async handle({ response, params, url }) {
        await requireDevice(params.id!);
        const limit = queryInteger(url, 'limit', 1, eventsPageRowsMax) ?? 100;
        const cursor = url.searchParams.get('cursor');
        const events = await repository.listEvents(params.id!, {
          fromTs: queryTime(url, 'from'),
          toTs: queryTime(url, 'to'),
          limit,
          after: cursor === null || cursor === '' ? undefined : decodeCursor(cursor),
        });
        const last = events[events.length - 1];
        sendJson(response, 200, { events, nextCursor: events.length === limit && last !== undefined ? encodeCursor(last.ts, last.id) : null });
      },
    },
    {
      method: 'POST',
      path: '/api/devices/{id}/messages',
      doc: {
        summary: 'Queue a cloud-to-device message with a time to live; delivered in order at the next sync',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['body', 'ttlSec'],
                properties: { body: { description: `Any JSON, at most ${cloudMessageBytesMax} bytes` }, ttlSec: { type: 'integer', minimum: 1, maximum: cloudMessageTtlSecMax } },
              },
            },
          },
        },
        responses: { '201': '{ seq, expiresAtMs }', '400': 'Bad body', '404': 'Unknown device', '429': 'The device\'s queue is full' },
      },
      async handle({ request, response, params }) {
        const body = await readJsonBody(request);
        if (!isPlainObject(body) || !('body' in body) || body.body === undefined) throw new HttpError(400, 'bad-body', 'body must be { "body": <JSON>, "ttlSec": <seconds> }');
        const ttlSec = body.ttlSec;
        if (typeof ttlSec !== 'number' || !Number.isInteger(ttlSec) || ttlSec < 1 || ttlSec > cloudMessageTtlSecMax) {
          throw new HttpError(400, 'bad-ttl', `ttlSec must be a whole number of seconds from 1 to ${cloudMessageTtlSecMax}`);
        }
        if (jsonBytes(body.body) > cloudMessageBytesMax) throw new HttpError(400, 'message-too-large', `message body exceeds ${cloudMessageBytesMax} bytes of JSON`);
        const nowMs = now();
        const result = await repository.enqueueMessage(params.id!, body.body, ttlSec, nowMs, cloudMessagesQueuedPerDeviceMax);
        if (result.outcome === 'unknown-device') await requireDevice(params.id!);
        if (result.outcome === 'queue-full') {
          throw new HttpError(429, 'queue-full', `device '${params.id}' already has ${cloudMessagesQueuedPerDeviceMax} messages waiting`);
        }
        if (result.outcome !== 'queued') throw new Error('unreachable');
        live.publish({ type: 'message-queued', deviceId: params.id!, seq: result.seq });
        sendJson(response, 201, { deviceId: params.id, seq: result.seq, expiresAtMs: nowMs + ttlSec * 1000 });
      },
    },
    {
      method: 'GET',
      path: '/api/devices/{id}/messages',
      doc: { summary: 'The device\'s cloud-to-device messages with their status (queued, delivered, acked, expired)', responses: { '200': '{ messages }', '404': 'Unknown device' } },
      async handle({ response, params }) {
        await requireDevice(params.id!);
        sendJson(response, 200, { messages: await repository.listMessages(params.id!) });
      },
    },
    {
      method: 'GET',
      path: '/api/devices/{id}/rpc',
      doc: {
        summary: 'The device\'s RPC log: proxied requests, newest first, with status and result',
        parameters: [{ name: 'limit', in: 'query', description: `At most this many, 1 to ${rpcLogPageRowsMax} (default 50)`, schema: { type: 'integer' } }],
        responses: { '200': '{ requests }', '400': 'Bad parameter', '404': 'Unknown device' },
      },
      async handle({ response, params, url }) {
        await requireDevice(params.id!);
        const limit = queryInteger(url, 'limit', 1, rpcLogPageRowsMax) ?? 50;
        sendJson(response, 200, { requests: await repository.listRpcRequests(params.id!, limit) });
      },
    },
    {
      method: 'GET',
      path: '/api/templates',
      doc: { summary: 'Templates the cloud decodes with: id, version, content hash, typed table and fields', responses: { '200': '{ templates }' } },
      async handle({ response }) {
        sendJson(response, 200, { templates: (context.templates ?? []).map(templateView) });
      },
    },
    {
      method: 'GET',
      path: '/api/rpc/routes',
      doc: { summary: 'Configured RPC routes: names, methods and URL hosts (never headers or secrets)', responses: { '200': '{ routes }' } },
      async handle({ response }) {
        const routes = context.rpcRoutes?.routes ?? {};
        sendJson(response, 200, {
          routes: Object.keys(routes).sort().map((name) => {
            const route = routes[name]!;
            return { name, method: route.method, host: urlHost(route.url), timeoutMs: route.timeoutMs, maxResponseBytes: route.maxResponseBytes, allowPrivate: route.allowPrivate };
          }),
        });
      },
    },
    {
      method: 'GET',
      path: '/api/downstream',
      doc: { summary: 'Downstream routes: cursor, lag (events behind), delivered, failures, dead letters, last error', responses: { '200': '{ routes }' } },
      async handle({ response }) {
        sendJson(response, 200, { routes: context.downstream === null || context.downstream === undefined ? [] : await context.downstream.status() });
      },
    },
    {
      method: 'GET',
      path: '/api/downstream/{route}/dead-letters',
      doc: {
        summary: 'Batches a route gave up on after its maximum attempts, oldest first, with the error and the items',
        parameters: [
          { name: 'route', in: 'path', required: true, description: 'Route name', schema: { type: 'string' } },
          { name: 'after', in: 'query', description: 'Only dead letters with a larger id (the last id of the previous page)', schema: { type: 'integer' } },
          { name: 'limit', in: 'query', description: `Page size, 1 to ${downstreamDeadLettersPageMax} (default 20)`, schema: { type: 'integer' } },
        ],
        responses: { '200': '{ deadLetters }', '400': 'Bad parameter', '404': 'Unknown route' },
      },
      async handle({ response, params, url }) {
        const route = params.route!;
        if (context.downstream === null || context.downstream === undefined || !context.downstream.routeNames.includes(route)) {
          throw new HttpError(404, 'unknown-route', `no downstream route '${route}'`);
        }
        const after = queryInteger(url, 'after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
        const limit = queryInteger(url, 'limit', 1, downstreamDeadLettersPageMax) ?? 20;
        sendJson(response, 200, { deadLetters: await repository.listDeadLetters(route, after, limit) });
      },
    },
    {
      method: 'GET',
      path: '/api/events/stream',
      doc: {
        summary: 'Server-Sent Events: committed events, state changes, queue changes, connections',
        parameters: [
          { name: 'deviceId', in: 'query', description: 'Only updates of this device', schema: { type: 'string' } },
          { name: 'access_token', in: 'query', description: 'The admin token, for clients that cannot send headers (EventSource)', schema: { type: 'string' } },
        ],
        responses: { '200': 'text/event-stream; each update is `event: <type>` with JSON data' },
        responseContentType: 'text/event-stream',
      },
      async handle({ request, response, url }) {
        const only = url.searchParams.get('deviceId');
        response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
        response.write(': tandem live stream\n\n');
        streams.add(response);
        metrics.set('tandem_live_clients', streams.size);
        const heartbeat = setInterval(() => response.write(': keepalive\n\n'), 15_000);
        const unsubscribe = live.subscribe((update: LiveUpdate) => {
          if (only !== null && update.deviceId !== only) return;
          // A reader that falls this far behind is dropped rather than buffered without end.
          if (response.writableLength > liveStreamBufferBytesMax) {
            metrics.increment('tandem_live_dropped_clients_total');
            response.destroy();
            return;
          }
          response.write(`event: ${update.type}\ndata: ${JSON.stringify(update)}\n\n`);
        });
        const finish = (): void => {
          clearInterval(heartbeat);
          unsubscribe();
          streams.delete(response);
          metrics.set('tandem_live_clients', streams.size);
        };
        request.once('close', finish);
        response.once('close', finish);
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      public: true,
      doc: { summary: 'Prometheus metrics (text exposition format)', responses: { '200': 'Metrics' }, responseContentType: 'text/plain' },
      async handle({ response }) {
        const text = await metrics.render();
        response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        response.end(text);
      },
    },
    {
      method: 'GET',
      path: '/api/openapi.json',
      public: true,
      doc: { summary: 'This OpenAPI 3 document', responses: { '200': 'The document' } },
      async handle({ response }) {
        sendJson(response, 200, openApiDocument());
      },
    },
    {
      method: 'GET',
      path: '/healthz',
      public: true,
      doc: { summary: 'Liveness: 200 while the process serves requests', responses: { '200': '{ ok: true }' } },
      async handle({ response }) {
        sendJson(response, 200, { ok: true });
      },
    },
  ];

  function openApiDocument(): Record<string, unknown> {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const route of routes) {
      const parameters: unknown[] = [];
      if (route.path.includes('{id}')) parameters.push(deviceIdParam);
      parameters.push(...(route.doc.parameters ?? []));
      const responses: Record<string, unknown> = {};
      for (const [status, description] of Object.entries(route.doc.responses)) {
        const content = status.startsWith('2') ? { [route.doc.responseContentType ?? 'application/json']: {} } : { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
        responses[status] = { description, content };
      }
      if (!route.public) responses['401'] = { description: 'Missing or wrong admin token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
      paths[route.path] ??= {};
      paths[route.path]![route.method.toLowerCase()] = {
        summary: route.doc.summary,
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(route.doc.requestBody !== undefined ? { requestBody: route.doc.requestBody } : {}),
        responses,
        ...(route.public ? { security: [] } : {}),
      };
    }
    return {
      openapi: '3.0.3',
      info: { title: 'Tandem cloud stub', version: '0.1.0', description: 'Devices, state replica, events, cloud-to-device queue, live stream and metrics.' },
      components: {
        securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'The admin token from the data directory (admin-token)' } },
        schemas: {
          Error: {
            type: 'object',
            properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
          },
        },
      },
      security: [{ adminToken: [] }],
      paths,
    };
  }

  function authorized(request: IncomingMessage, url: URL, route: Route): boolean {
    if (route.public) return true;
    const token = bearerToken(request.headers.authorization) ?? (route.path === '/api/events/stream' ? url.searchParams.get('access_token') : null);
    return token !== null && secretsEqual(token, context.adminToken);
  }

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const candidates = routes.map((route) => ({ route, params: matchPath(route.path, url.pathname) })).filter((c) => c.params !== null);
    if (candidates.length === 0) throw new HttpError(404, 'not-found', `no such path: ${url.pathname}`);
    const match = candidates.find((c) => c.route.method === request.method);
    if (match === undefined) {
      const allow = candidates.map((c) => c.route.method).join(', ');
      throw new HttpError(405, 'method-not-allowed', `${request.method} is not allowed on ${url.pathname}; use ${allow}`, {}, { allow });
    }
    if (!authorized(request, url, match.route)) {
      throw new HttpError(401, 'unauthorized', 'send the admin token as `Authorization: Bearer <token>` (it is in the data directory, file admin-token)', {}, {
        'www-authenticate': 'Bearer realm="tandem"',
      });
    }
    await match.route.handle({ request, response, url, params: match.params! });
  }

  function handle(request: IncomingMessage, response: ServerResponse): void {
    response.once('finish', () => metrics.increment('tandem_http_requests_total', 1, { code: String(response.statusCode) }));
    serve(request, response).catch((error: unknown) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      if (error instanceof HttpError) {
        // A refused request body may still be arriving: do not read it, close after answering.
        if (error.status === 413) response.setHeader('connection', 'close');
        sendError(response, error);
        return;
      }
      sendError(response, new HttpError(500, 'internal', `internal error: ${(error as Error).message}`));
    });
  }

  function closeStreams(): void {
    for (const stream of streams) stream.destroy();
    streams.clear();
  }

  return { handle, routes, openApiDocument, closeStreams };
}
