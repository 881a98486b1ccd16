// The cloud of a fleet simulation: the real cloud stub (embedded broker, SQLite, sync session, RPC
// proxy) started in-process on one data directory, stopped and started again on it (a restart of
// cloud and broker), with a seeded chance to send each downlink twice, and the live `event` stream
// recorded as what was delivered downstream. Also a counting HTTP upstream for proxied RPC.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { provisionDevice } from '../../cloud-stub/provisioning.ts';
import { createRpcProxy, parseRpcRoutes } from '../../cloud-stub/rpc-proxy.ts';
import { startCloud, type RunningCloud } from '../../cloud-stub/server.ts';
import { SyncSession, syncSessionFactory } from '../../cloud-stub/sync-session.ts';
import type { DeviceTransport } from '../../cloud-stub/transport.ts';
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

export class SimCloud {
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
