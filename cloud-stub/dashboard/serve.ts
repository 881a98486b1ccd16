// Serves the dashboard (static files in this folder, no build step) and, when a fleet of emulated
// devices runs in the same process (`npm start`), the fleet controls under /fleet/. Plugs into
// startCloud's `httpExtension`; everything else falls through to the HTTP API.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bearerToken, secretsEqual } from '../identity.ts';

/** One emulated device as the fleet runner shows it. */
export interface FleetDeviceView {
  deviceId: string;
  /** 'sandbox' (the Espruino sandbox in this process) or 'espruino' (a real interpreter). */
  runtime: 'sandbox' | 'espruino';
  running: boolean;
  networkOnline: boolean;
  boots: number;
  bytesSent: number;
  bytesReceived: number;
  /** Bytes per 30 days at the rate of the last minutes (both directions), null until measured. */
  projectedBytesPerMonth: number | null;
  /** What the device's console last said about its LED and report interval (null: not yet). */
  led: boolean | null;
  reportIntervalSec: number | null;
  /** Whether the device has a button the fleet can press (the sandbox's mock button). */
  buttonAvailable: boolean;
  /** The last console lines, oldest first. */
  console: string[];
}

/** What the fleet runner lets the dashboard do. */
export interface FleetControls {
  devices(): FleetDeviceView[];
  /** Each returns false when no such device exists (or the action is not available for it). */
  setNetworkOnline(deviceId: string, online: boolean): boolean;
  powerCycle(deviceId: string): boolean;
  pressButton(deviceId: string): boolean;
}

const folder = dirname(fileURLToPath(import.meta.url));
const staticFiles: Record<string, { file: string; type: string }> = {
  '/dashboard/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/charts.js': { file: 'charts.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};
/** Largest control request body; the controls take a few bytes of JSON at most. */
const controlBodyBytesMax = 256;

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)) });
  response.end(text);
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  sendJson(response, status, { error: { code, message } });
}

function readSmallJson(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > controlBodyBytesMax) {
        reject(new Error(`body larger than ${controlBodyBytesMax} bytes`));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text) as unknown);
      } catch {
        reject(new Error('body is not JSON'));
      }
    });
    request.on('error', reject);
  });
}

/**
 * Returns the `httpExtension` for startCloud. Static files are public (they hold no data; the
 * page asks for the admin token); the fleet endpoints need the admin token like the API.
 */
export function createDashboardHandler(options: { adminToken: string; fleet?: FleetControls }): (request: IncomingMessage, response: ServerResponse) => boolean {
  // Read once: the files are small and a running demo should not depend on the working folder.
  const cache = new Map<string, Buffer>();
  const fileBytes = (name: string): Buffer => {
    let bytes = cache.get(name);
    if (bytes === undefined) {
      bytes = readFileSync(join(folder, name));
      cache.set(name, bytes);
    }
    return bytes;
  };

  async function serveFleet(request: IncomingMessage, response: ServerResponse, pathname: string, fleet: FleetControls): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (token === null || !secretsEqual(token, options.adminToken)) {
      sendError(response, 401, 'unauthorized', 'send the admin token as `Authorization: Bearer <token>`');
      return;
    }
    if (pathname === '/fleet/devices' && request.method === 'GET') {
      sendJson(response, 200, { devices: fleet.devices() });
      return;
    }
    const match = /^\/fleet\/devices\/([A-Za-z0-9_-]{1,32})\/(network|power-cycle|button)$/.exec(pathname);
    if (match === null) {
      sendError(response, 404, 'not-found', `no such path: ${pathname}`);
      return;
    }
    if (request.method !== 'POST') {
      sendError(response, 405, 'method-not-allowed', `use POST on ${pathname}`);
      return;
    }
    const deviceId = match[1]!;
    let done: boolean;
    if (match[2] === 'network') {
      let body: unknown;
      try {
        body = await readSmallJson(request);
      } catch (error) {
        sendError(response, 400, 'bad-body', (error as Error).message);
        return;
      }
      const online = (body as { online?: unknown }).online;
      if (typeof online !== 'boolean') {
        sendError(response, 400, 'bad-body', 'body must be {"online": true|false}');
        return;
      }
      done = fleet.setNetworkOnline(deviceId, online);
    } else if (match[2] === 'power-cycle') {
      done = fleet.powerCycle(deviceId);
    } else {
      done = fleet.pressButton(deviceId);
    }
    if (!done) {
      sendError(response, 404, 'unknown-device', `no fleet device '${deviceId}' (or it has no such control)`);
      return;
    }
    sendJson(response, 200, { ok: true, device: fleet.devices().find((device) => device.deviceId === deviceId) ?? null });
  }

  /**
   * Never throws: an exception in a request listener would end the whole cloud process (the HTTP
   * fuzzer found `////%2F`, which `new URL` refuses).
   */
  return (request, response) => {
    try {
      return route(request, response);
    } catch (error) {
      if (!response.headersSent) sendError(response, 500, 'internal', `internal error: ${(error as Error).message}`);
      else response.destroy();
      return true;
    }
  };

  function route(request: IncomingMessage, response: ServerResponse): boolean {
    let pathname: string;
    try {
      pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
    } catch {
      sendError(response, 400, 'bad-path', 'the request path is not a valid URL path');
      return true;
    }
    if (pathname === '/favicon.ico') {
      // No icon: an empty answer keeps the browser from logging a 404 on every load.
      response.writeHead(204);
      response.end();
      return true;
    }
    if (pathname === '/' || pathname === '/dashboard') {
      response.writeHead(302, { location: '/dashboard/' });
      response.end();
      return true;
    }
    const file = staticFiles[pathname];
    if (file !== undefined) {
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        sendError(response, 405, 'method-not-allowed', 'use GET');
        return true;
      }
      const bytes = fileBytes(file.file);
      response.writeHead(200, { 'content-type': file.type, 'content-length': String(bytes.length), 'cache-control': 'no-cache' });
      response.end(request.method === 'HEAD' ? undefined : bytes);
      return true;
    }
    if (pathname.startsWith('/fleet/')) {
      if (options.fleet === undefined) {
        sendError(response, 404, 'no-fleet', 'no emulated fleet runs in this process (start one with `npm start`)');
        return true;
      }
      serveFleet(request, response, pathname, options.fleet).catch((error: Error) => {
        if (!response.headersSent) sendError(response, 500, 'internal', error.message);
        else response.destroy();
      });
      return true;
    }
    return false;
  }
}
