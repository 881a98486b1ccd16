// The cloud of a fleet simulation: the real cloud stub (embedded broker, SQLite, sync session, RPC
// proxy) started in-process on one data directory, stopped and started again on it (a restart of
// cloud and broker), with a seeded chance to send each downlink twice, and the live `event` stream
// recorded as what was delivered downstream. Also a counting HTTP upstream for proxied RPC.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { createRpcProxy, parseRpcRoutes } from '../../cloud-stub/rpc-proxy.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { SyncSession, syncSessionFactory } from '../../cloud-stub/sync-session.ts';
import type { Repository } from '../../cloud-stub/storage/repository.ts';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import type { DeviceTransport } from '../../cloud-stub/transport.ts';
import { cloudMessagesQueuedPerDeviceMax } from '../../firmware/protocol/limits.ts';
import { demoStateTemplate } from '../../firmware/protocol/templates/demo-state.ts';
import { createDefaultRegistry } from '../../firmware/protocol/templates/index.ts';

export interface DeliveredEvent {
  count: number;
  templateId: string;
  fields: Record<string, unknown>;
}

/** Counts upstream hits per call number `n` (the RPC's args carry it). */
export class CountingUpstream {
  readonly hits = new Map<number, number>();
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const n = Number(new URL(request.url ?? '/', 'http://x').searchParams.get('n'));
      this.hits.set(n, (this.hits.get(n) ?? 0) + 1);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ n }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** What the simulation needs of its cloud, in-process or in a child process. */
export interface SimCloudApi {
  readonly delivered: Map<string, DeliveredEvent>;
  dupDownlinkChance: number;
  duplicatedDownlinks: number;
  readonly isRunning: boolean;
  readonly mqttPort: number;
  /** The cloud's storage, for reads (and provisioning). */
  readonly repository: Repository | null;
  start(): Promise<number>;
  /** A clean stop (SIGTERM for a child). */
  stop(): Promise<void>;
  /** kill -9 of a child process; a clean stop in-process (there is no process to kill). */
  kill(): Promise<void>;
  provision(deviceId: string): Promise<string>;
  /** Changes desired values the way the HTTP API does (stored, then pushed to a connected device). */
  patchDesired(deviceId: string, values: Record<string, unknown>): Promise<void>;
  /** Queues a cloud-to-device message; its seq, or null when not queued. */
  enqueueMessage(deviceId: string, body: unknown): Promise<number | null>;
  whenIdle(): Promise<void>;
  sessionCount(): number;
  recentLogs(count: number): string[];
  /** Frees what outlives stop() (the child mode's read handle). */
  close(): Promise<void>;
}

export class SimCloud implements SimCloudApi {
  running: RunningCloud | null = null;
  session: SyncSession | null = null;
  /** Delivered downstream (live hub `event` updates after commit), by `device|epoch|seq`. */
  readonly delivered = new Map<string, DeliveredEvent>();
  dupDownlinkChance = 0;
  duplicatedDownlinks = 0;
  starts = 0;
  private readonly logs: string[] = [];

  constructor(
    readonly dataDir: string,
    private readonly upstream: CountingUpstream,
    private readonly random: () => number,
  ) {}

  get mqttPort(): number {
    if (this.running === null || this.running.mqttPort === null) throw new Error('cloud is not running');
    return this.running.mqttPort;
  }

  get isRunning(): boolean {
    return this.running !== null;
  }

  get repository(): Repository | null {
    return this.running?.context.repository ?? null;
  }

  kill(): Promise<void> {
    return this.stop();
  }

  async close(): Promise<void> {
    await this.stop();
  }

  async patchDesired(deviceId: string, values: Record<string, unknown>): Promise<void> {
    const running = this.running;
    if (running === null) return;
    const repository = running.context.repository;
    const state = await repository.getState(deviceId);
    const result = await repository.patchDesired(deviceId, state?.desiredVersion ?? 0, values, Date.now());
    if (result.outcome === 'applied') running.context.live.publish({ type: 'desired', deviceId, desiredVersion: result.desiredVersion, keys: Object.keys(values) });
  }

  async enqueueMessage(deviceId: string, body: unknown): Promise<number | null> {
    const running = this.running;
    if (running === null) return null;
    const result = await running.context.repository.enqueueMessage(deviceId, body, 120, Date.now(), cloudMessagesQueuedPerDeviceMax);
    if (result.outcome !== 'queued') return null;
    running.context.live.publish({ type: 'message-queued', deviceId, seq: result.seq });
    return result.seq;
  }

  async whenIdle(): Promise<void> {
    await this.running?.context.transport.whenIdle();
  }

  /** Recent cloud log lines (for failure reports). */
  recentLogs(count: number): string[] {
    return this.logs.slice(-count);
  }

  async start(): Promise<number> {
    const routes = parseRpcRoutes({ routes: { count: { url: `http://127.0.0.1:${this.upstream.port}/hit?n={n}`, allowPrivate: true, timeoutMs: 2000 } } }, {});
    const factory = syncSessionFactory({ templates: createDefaultRegistry(), stateTemplates: [demoStateTemplate], rpc: createRpcProxy(routes) });
    const cloud = await startCloud({
      dataDir: this.dataDir,
      mqttPort: 0,
      mqttHost: '127.0.0.1',
      httpPort: 0,
      httpHost: '127.0.0.1',
      expirySweepMs: 200,
      log: (line) => {
        this.logs.push(line);
        if (this.logs.length > 400) this.logs.splice(0, 200);
      },
      session: (context) => {
        const session = factory(context);
        this.session = session;
        return session;
      },
    });
    this.running = cloud;
    this.starts++;
    cloud.context.live.subscribe((update) => {
      if (update.type !== 'event') return;
      const key = `${update.deviceId}|${update.epoch}|${update.seq}`;
      const seen = this.delivered.get(key);
      if (seen !== undefined) seen.count++;
      else this.delivered.set(key, { count: 1, templateId: update.templateId, fields: update.fields as Record<string, unknown> });
    });
    // [fault] duplicated downlinks: the session's sends go through a wrapper that may send twice.
    const inner = cloud.context.transport;
    const wrapper: DeviceTransport = {
      mode: inner.mode,
      setHandler: (handler) => inner.setHandler(handler),
      sendDownlink: async (deviceId, payload) => {
        await inner.sendDownlink(deviceId, payload);
        if (this.dupDownlinkChance > 0 && this.random() < this.dupDownlinkChance) {
          this.duplicatedDownlinks++;
          await inner.sendDownlink(deviceId, payload);
        }
      },
      connectedDeviceIds: () => inner.connectedDeviceIds(),
      isConnected: (deviceId) => inner.isConnected(deviceId),
      whenIdle: () => inner.whenIdle(),
      close: () => inner.close(),
    };
    cloud.context.transport = wrapper;
    return this.mqttPort;
  }

  async stop(): Promise<void> {
    const cloud = this.running;
    if (cloud === null) return;
    this.running = null;
    this.session?.close();
    this.session = null;
    await cloud.stop();
  }

  async provision(deviceId: string): Promise<string> {
    if (this.running === null) throw new Error('cloud is not running');
    const outcome = await provisionDevice(this.running.context.repository, deviceId, { hashCost: 1024 });
    if (outcome.outcome !== 'created') throw new Error(`provision ${deviceId}: ${outcome.outcome}`);
    return outcome.secret;
  }

  /** Sessions the cloud holds in memory (a bound: at most one per device). */
  sessionCount(): number {
    const session = this.session as unknown as { sessions?: Map<string, unknown> } | null;
    return session?.sessions?.size ?? 0;
  }
}

/**
 * The cloud stub in a child process (fixtures/cloud-child.ts) on the same data directory: `kill()`
 * is a real SIGKILL. Events delivered downstream come from the child's `EVENT` lines; desired
 * changes and messages go through its HTTP API; reads go to the SQLite file directly.
 */
export class ChildSimCloud implements SimCloudApi {
  readonly delivered = new Map<string, DeliveredEvent>();
  dupDownlinkChance = 0;
  duplicatedDownlinks = 0;
  starts = 0;
  kills = 0;
  private child: ChildProcess | null = null;
  private ports: { mqtt: number; http: number; token: string } | null = null;
  private reader: SqliteRepository | null = null;
  private readonly logs: string[] = [];

  constructor(
    readonly dataDir: string,
    private readonly upstream: CountingUpstream,
  ) {}

  get isRunning(): boolean {
    return this.child !== null && this.ports !== null;
  }

  get mqttPort(): number {
    if (this.ports === null) throw new Error('cloud is not running');
    return this.ports.mqtt;
  }

  get repository(): Repository | null {
    return this.reader;
  }

  recentLogs(count: number): string[] {
    return this.logs.slice(-count);
  }

  sessionCount(): number {
    return 0;
  }

  async start(): Promise<number> {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'cloud-child.ts'), this.dataDir, String(this.upstream.port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let pending = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          if (line.startsWith('READY ')) {
            const [, mqtt, http, token] = line.split(' ');
            this.ports = { mqtt: Number(mqtt), http: Number(http), token: token! };
            resolve();
          } else if (line.startsWith('EVENT ')) {
            const update = JSON.parse(line.slice(6)) as { deviceId: string; epoch: number; seq: number; templateId: string; fields: Record<string, unknown> };
            const key = `${update.deviceId}|${update.epoch}|${update.seq}`;
            const seen = this.delivered.get(key);
            if (seen !== undefined) seen.count++;
            else this.delivered.set(key, { count: 1, templateId: update.templateId, fields: update.fields });
          }
          newline = pending.indexOf('\n');
        }
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        this.logs.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        if (this.logs.length > 400) this.logs.splice(0, 200);
      });
      child.once('exit', (code) => reject(new Error(`cloud child exited (${code}) before it was ready: ${this.logs.slice(-5).join(' | ')}`)));
    });
    await ready;
    this.starts++;
    if (this.reader === null) this.reader = new SqliteRepository({ path: join(this.dataDir, 'tandem.sqlite') });
    return this.mqttPort;
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (child === null) return;
    this.child = null;
    this.ports = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      await exited;
    }
  }

  stop(): Promise<void> {
    return this.end('SIGTERM');
  }

  async kill(): Promise<void> {
    this.kills++;
    await this.end('SIGKILL');
  }

  async close(): Promise<void> {
    await this.stop();
    await this.reader?.close();
    this.reader = null;
  }

  async provision(deviceId: string): Promise<string> {
    if (this.reader === null) throw new Error('cloud is not running');
    const outcome = await provisionDevice(this.reader, deviceId, { hashCost: 1024 });
    if (outcome.outcome !== 'created') throw new Error(`provision ${deviceId}: ${outcome.outcome}`);
    return outcome.secret;
  }

  private http(method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; etag: string | undefined; json: unknown }> {
    const ports = this.ports;
    if (ports === null) return Promise.resolve({ status: 0, etag: undefined, json: null });
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    return new Promise((resolve) => {
      const req = request({
        host: '127.0.0.1', port: ports.http, method, path, agent: false,
        headers: { authorization: `Bearer ${ports.token}`, ...(data !== null ? { 'content-type': 'application/json' } : {}), ...headers },
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          let json: unknown = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
          } catch {
            json = null;
          }
          resolve({ status: response.statusCode ?? 0, etag: response.headers.etag, json });
        });
        response.on('error', () => resolve({ status: 0, etag: undefined, json: null }));
      });
      // A killed cloud answers nothing: that is the fault, not an error of the simulation.
      req.on('error', () => resolve({ status: 0, etag: undefined, json: null }));
      if (data !== null) req.write(data);
      req.end();
    });
  }

  async patchDesired(deviceId: string, values: Record<string, unknown>): Promise<void> {
    const state = await this.http('GET', `/api/devices/${deviceId}/state`, undefined);
    if (state.status !== 200 || state.etag === undefined) return;
    await this.http('PATCH', `/api/devices/${deviceId}/state/desired`, values, { 'if-match': state.etag });
  }

  async enqueueMessage(deviceId: string, body: unknown): Promise<number | null> {
    const answer = await this.http('POST', `/api/devices/${deviceId}/messages`, { body, ttlSec: 120 });
    return answer.status === 201 ? ((answer.json as { seq: number }).seq) : null;
  }

  async whenIdle(): Promise<void> {
    // The child's uplink lanes are not visible from here: give in-flight uplinks a moment.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
