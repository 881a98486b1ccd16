// The demo's "weather" service: a tiny local HTTP server the cloud's RPC route points at, because
// this machine has no internet. Answers GET /weather?city=NAME with a made-up but steady forecast.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WeatherService {
  port: number;
  /** Requests answered so far (the tests and the dashboard compare it with the RPC log). */
  readonly requests: number;
  close(): Promise<void>;
}

const summaries = ['clear', 'cloudy', 'light rain', 'snow showers', 'fog', 'windy'];

/** A forecast that depends only on the city and the hour, so repeated calls agree. */
function forecast(city: string, nowMs: number): { city: string; tempC: number; summary: string } {
  let hash = 0;
  for (let i = 0; i < city.length; i++) hash = (hash * 31 + city.charCodeAt(i)) >>> 0;
  const hour = Math.floor(nowMs / 3_600_000);
  const mixed = (hash ^ (hour * 2654435761)) >>> 0;
  return { city, tempC: (mixed % 300) / 10 - 5, summary: summaries[mixed % summaries.length]! };
}

export async function startWeatherService(host = '127.0.0.1', port = 0): Promise<WeatherService> {
  let requests = 0;
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (request.method !== 'GET' || url.pathname !== '/weather') {
      response.writeHead(404, { 'content-type': 'application/json' });
      response.end('{"error":"try GET /weather?city=Oslo"}');
      return;
    }
    requests++;
    const body = JSON.stringify(forecast(url.searchParams.get('city') ?? 'nowhere', Date.now()));
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    response.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
