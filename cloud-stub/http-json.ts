// Safe JSON in and out for the HTTP API: bounded body reading, parsing that refuses keys which
// could pollute prototypes (`__proto__`, `constructor`, `prototype`) and over-deep nesting, and
// one error shape for every refusal.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpBodyBytesMax, httpJsonDepthMax } from '../firmware/protocol/limits.ts';

/** An operating error of one request: becomes `status` with `{ error: { code, message } }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const forbiddenKeys = new Set(['__proto__', 'constructor', 'prototype']);

/** Throws a 400 when the value holds a forbidden key or nests deeper than the limit. */
export function checkJsonShape(value: unknown, depth = 0, path = '$'): void {
  if (depth > httpJsonDepthMax) throw new HttpError(400, 'too-deep', `JSON nests deeper than ${httpJsonDepthMax} levels at ${path}`);
  if (Array.isArray(value)) {
    value.forEach((item, index) => checkJsonShape(item, depth + 1, `${path}[${index}]`));
  } else if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value)) {
      if (forbiddenKeys.has(key)) throw new HttpError(400, 'forbidden-key', `key '${key}' is not allowed (at ${path})`);
      checkJsonShape((value as Record<string, unknown>)[key], depth + 1, `${path}.${key}`);
    }
  }
}

/** Parses JSON text into a checked value (see checkJsonShape); bad JSON is a 400. */
export function parseJsonText(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, 'malformed-json', `request body is not valid JSON: ${(error as Error).message}`);
  }
  checkJsonShape(value);
  return value;
}

/** Reads the request body up to the limit (413 beyond it) and parses it as JSON. */
export async function readJsonBody(request: IncomingMessage, bytesMax = httpBodyBytesMax): Promise<unknown> {
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/([a-z.+-]*\+)?json\b/i.test(type)) {
    throw new HttpError(415, 'unsupported-media-type', `send the body as application/json, not '${type}'`);
  }
  const declared = Number(request.headers['content-length'] ?? '0');
  if (declared > bytesMax) throw new HttpError(413, 'body-too-large', `request body of ${declared} bytes exceeds ${bytesMax}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > bytesMax) throw new HttpError(413, 'body-too-large', `request body exceeds ${bytesMax} bytes`);
    chunks.push(buffer);
  }
  if (size === 0) throw new HttpError(400, 'empty-body', 'request body is empty; send a JSON object');
  return parseJsonText(Buffer.concat(chunks).toString('utf8'));
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  response.end(text);
}

export function sendError(response: ServerResponse, error: HttpError): void {
  sendJson(response, error.status, { error: { code: error.code, message: error.message, ...error.extra } }, error.headers);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
