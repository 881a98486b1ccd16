// The cloud stub in one call: storage, broker (embedded or external), group-commit ingest, live
// hub, HTTP API and housekeeping, wired together. `startCloud` is what `npx tandem cloud`,
// `npm start` and the tests run in-process; `stop()` undoes it in reverse order.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { cloudMessageRetentionMs, stateChangeRetentionMs } from '../firmware/protocol/limits.ts';
import { resolve } from 'node:path';
import { listen, EmbeddedBroker } from './embedded-broker.ts';
import { ExternalBroker } from './external-broker.ts';
import { createDashboardHandler } from './dashboard/serve.ts';
import { createHttpApi } from './http-api.ts';
import { CredentialVerifier } from './identity.ts';
import { IngestQueue, type CommittedBatch } from './ingest.ts';
import { LiveHub } from './live-hub.ts';
import { createCloudMetrics, type Metrics } from './metrics.ts';
import { loadOrCreateAdminToken, loadOrCreateServiceCredential, openRepository, redactUrl, resolveDataDir } from './data-dir.ts';
import type { EventInput, Repository } from './storage/repository.ts';
import { ensureTlsMaterial } from './tls-material.ts';
import type { DeviceTransport, Log, UplinkHandler } from './transport.ts';
import { createRpcProxy, loadRpcRoutes, type RpcRoutes } from './rpc-proxy.ts';
import { loadDownstreamConfig, type RouteConfig } from './downstream/config.ts';
import { DownstreamRoutes } from './downstream/routes.ts';
import type { Template } from '../firmware/protocol/template.ts';
import { syncSessionFactory } from './sync-session.ts';
import { allTemplates, createDefaultRegistry } from '../firmware/protocol/templates/index.ts';
import { allStateTemplates } from '../firmware/protocol/templates/state-index.ts';

export { PortInUseError } from './embedded-broker.ts';
export { ExternalBrokerError } from './external-broker.ts';

/** Everything a sync session (or the dashboard) needs from the running cloud. */
export interface CloudContext {
  repository: Repository;
  ingest: IngestQueue;
  transport: DeviceTransport;
  live: LiveHub;
  metrics: Metrics;
  log: Log;
  now: () => number;
}

/** Builds the sync session once the cloud's parts exist (the lead's sync engine plugs in here). */
export type SessionFactory = (context: CloudContext) => UplinkHandler;

export interface CloudOptions {
  /** Data directory (default: TANDEM_DATA_DIR or `.tandem/cloud`). */
  dataDir?: string;
  /** Embedded broker port (default 1883, 0 = any free port) and bind address (default all). */
  mqttPort?: number;
  mqttHost?: string;
  /** mqtts port of the embedded broker; no TLS listener when absent. */
  tlsPort?: number;
  /** Extra names the TLS server certificate must cover (the board reaches the cloud by them). */
  tlsHostNames?: string[];
  /** HTTP API port (default 8080, 0 = any free port) and bind address (default all). */
  httpPort?: number;
  httpHost?: string;
  /** Use an external broker instead of the embedded one (MQTT_URL). */
  mqttUrl?: string;
  /** Shared-subscription group for the external broker (default `tandem`); false: unshared. */
  shareGroup?: string;
  sharedSubscription?: boolean;
  /** PostgreSQL (DATABASE_URL) instead of the SQLite file; and its schema (tests). */
  databaseUrl?: string;
  databaseSchema?: string;
  /** A ready repository (tests); the cloud does not close what it did not open. */
  repository?: Repository;
  session?: SessionFactory;
  /** RPC routes file (JSON, see cloud-stub/rpc-proxy.ts); without it every RPC is refused. */
  rpcRoutesPath?: string;
  /** Downstream routes file (JSON, see cloud-stub/downstream/config.ts); or the parsed routes (tests). */
  downstreamPath?: string;
  downstreamRoutes?: RouteConfig[];
  /** Idle poll interval of downstream routes (default downstreamPollMs). */
  downstreamPollMs?: number;
  /** Progress and operating-error lines (default: console.log). */
  log?: Log;
  /** How often expired cloud-to-device messages are swept (default 1000 ms). */
  expirySweepMs?: number;
  adminToken?: string;
  now?: () => number;
  /**
   * HTTP handler tried before the API; returns true when it answered the request. Default: the
   * dashboard (cloud-stub/dashboard) without fleet controls; `npm start` adds them.
   */
  httpExtension?: (request: IncomingMessage, response: ServerResponse) => boolean;
}

export interface RunningCloud {
  dataDir: string;
  storage: string;
  /** Embedded broker ports; null in external broker mode or when TLS is off. */
  mqttPort: number | null;
  mqttsPort: number | null;
  /** The CA certificate devices pin for mqtts (null when TLS is off). */
  caCertPath: string | null;
  httpPort: number;
  /** The embedded broker (null in external mode): `broker.handle(stream)` serves in-memory devices. */
  broker: EmbeddedBroker | null;
  adminToken: string;
  /** True when this start generated the token (print it once). */
  adminTokenCreated: boolean;
  context: CloudContext;
  /** The running downstream routes (null when none are configured). */
  downstream: DownstreamRoutes | null;
  stop(): Promise<void>;
}

/**
 * The sync session the cloud runs unless a test passes its own: every template the product knows,
 * the known state templates, and RPC routes from the routes file when one is given.
 */
function defaultSession(routes: RpcRoutes | null): SessionFactory {
  return syncSessionFactory({
    templates: createDefaultRegistry(),
    stateTemplates: allStateTemplates(),
    rpc: routes === null ? undefined : createRpcProxy(routes),
  });
}

/**
 * A committed `device-status` event becomes the device's reported state key `status`, so the state
 * replica shows how each device keeps up. Its version is (epoch, seq) packed into one number, which
 * grows with every event of a device, so an older status never overwrites a newer one.
 */
function reflectDeviceStatus(repository: Repository, live: LiveHub, log: Log, batches: CommittedBatch[]): void {
  for (const batch of batches) {
    let newest: EventInput | null = null;
    for (const row of batch.rows) if (row.templateId === 'device-status' && (newest === null || row.seq > newest.seq)) newest = row;
    if (newest === null) continue;
    const version = batch.epoch * 2 ** 32 + newest.seq;
    repository
      .applyReported(batch.deviceId, [{ key: 'status', value: newest.fields, version, ts: newest.ts }])
      .then((applied) => {
        if (applied.length > 0) live.publish({ type: 'reported', deviceId: batch.deviceId, keys: applied });
      })
      .catch((error: Error) => log(`status of ${batch.deviceId}: ${error.message}`));
  }
}

/** Stops taking uplinks, then lets the ones already received finish (bounded), so their commits land. */
async function closeTransport(transport: DeviceTransport): Promise<void> {
  await transport.close();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([transport.whenIdle(), new Promise<void>((done) => (timer = setTimeout(done, 2000)))]);
  clearTimeout(timer);
}

export async function startCloud(options: CloudOptions = {}): Promise<RunningCloud> {
  const log = options.log ?? ((line: string) => console.log(line));
  const now = options.now ?? Date.now;
  const dataDir = options.dataDir !== undefined ? resolve(options.dataDir) : resolveDataDir();
  const cleanups: Array<() => Promise<void> | void> = [];
  const stopAll = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        log(`stop: ${(error as Error).message}`);
      }
    }
  };

  try {
    const metrics = createCloudMetrics();
    const live = new LiveHub();

    let repository: Repository;
    let storage: string;
    if (options.repository !== undefined) {
      repository = options.repository;
      storage = `${repository.kind} (provided)`;
    } else {
      const opened = await openRepository({ dataDir, databaseUrl: options.databaseUrl, databaseSchema: options.databaseSchema });
      repository = opened.repository;
      storage = opened.description;
      cleanups.push(() => repository.close());
    }
    log(`storage: ${storage}`);

    const admin = options.adminToken !== undefined ? { token: options.adminToken, created: false } : loadOrCreateAdminToken(dataDir);
    const service = loadOrCreateServiceCredential(dataDir);

    const templates: Template[] = allTemplates();
    const rpcRoutes = options.rpcRoutesPath === undefined ? null : loadRpcRoutes(options.rpcRoutesPath);
    const downstreamConfig = options.downstreamRoutes ?? (options.downstreamPath === undefined ? null : loadDownstreamConfig(options.downstreamPath));
    let downstream: DownstreamRoutes | null = null;
    if (downstreamConfig !== null && downstreamConfig.length > 0) {
      const routes = await DownstreamRoutes.start(downstreamConfig, { repository, metrics, log, templates, now, pollMs: options.downstreamPollMs });
      downstream = routes;
      cleanups.push(() => routes.close());
      // State changes (reported from sessions, desired from the API) wake the routes too.
      const unsubscribe = live.subscribe((update) => {
        if (update.type === 'reported' || update.type === 'desired') routes.notify();
      });
      cleanups.push(unsubscribe);
    }

    const ingest = new IngestQueue(repository, metrics, {
      now,
      onCommitted: (batches) => {
        downstream?.notify();
        reflectDeviceStatus(repository, live, log, batches);
        if (!live.active) return;
        for (const batch of batches) {
          for (const row of batch.rows) {
            live.publish({ type: 'event', deviceId: batch.deviceId, epoch: batch.epoch, seq: row.seq, templateId: row.templateId, ts: row.ts, fields: row.fields });
          }
        }
      },
    });
    cleanups.push(() => ingest.close());

    let transport: DeviceTransport;
    let mqttPort: number | null = null;
    let mqttsPort: number | null = null;
    let caCertPath: string | null = null;
    let embedded: EmbeddedBroker | null = null;
    if (options.mqttUrl !== undefined && options.mqttUrl !== '') {
      transport = await ExternalBroker.connect({
        url: options.mqttUrl,
        shareGroup: options.shareGroup,
        shared: options.sharedSubscription,
        username: service.username,
        password: service.secret,
        metrics,
        log,
      });
      cleanups.push(() => closeTransport(transport));
      log(`mqtt: external broker ${redactUrl(options.mqttUrl)}, ${options.sharedSubscription === false ? 'unshared' : `shared group '${options.shareGroup ?? 'tandem'}'`}`);
    } else {
      const broker = await EmbeddedBroker.create({
        verifier: new CredentialVerifier((deviceId) => repository.getDeviceSecretHash(deviceId)),
        serviceSecret: service.secret,
        metrics,
        log,
      });
      transport = broker;
      embedded = broker;
      cleanups.push(() => closeTransport(broker));
      const host = options.mqttHost ?? '0.0.0.0';
      mqttPort = await broker.listenTcp(options.mqttPort ?? 1883, host);
      log(`mqtt: embedded broker on mqtt://${host}:${mqttPort}`);
      if (options.tlsPort !== undefined) {
        log('mqtts: preparing the local CA and server certificate ...');
        const tls = ensureTlsMaterial(dataDir, options.tlsHostNames);
        caCertPath = tls.caCertPath;
        mqttsPort = await broker.listenTls(options.tlsPort, host, { key: tls.serverKeyPem, cert: tls.serverCertPem });
        log(`mqtts: on mqtts://${host}:${mqttsPort} (CA for device configs: ${tls.caCertPath})`);
      }
    }

    const context: CloudContext = { repository, ingest, transport, live, metrics, log, now };
    const session = (options.session ?? defaultSession(rpcRoutes))(context);
    transport.setHandler({
      handleUplink: (message) => session.handleUplink(message),
      deviceConnection: (deviceId, connected) => {
        if (connected) repository.markDeviceSeen(deviceId, now()).catch((error: Error) => log(`last-seen of ${deviceId}: ${error.message}`));
        live.publish({ type: 'connection', deviceId, connected });
        session.deviceConnection?.(deviceId, connected);
      },
    });

    metrics.collect(async () => {
      const depths = await repository.queueDepths();
      metrics.set('tandem_c2d_queue_depth', depths.messagesQueued);
      metrics.set('tandem_rpc_pending', depths.rpcPending);
    });

    // Expired cloud-to-device messages are reported (live stream, metric, log), never dropped
    // silently; finished history is purged after cloudMessageRetentionMs.
    let sweeping = false;
    let lastPurgeMs = 0;
    const sweep = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      const purge = now() - lastPurgeMs >= 60_000;
      if (purge) lastPurgeMs = now();
      repository
        .expireMessages(now())
        .then(async (expired) => {
          // Reported as soon as the repository has made the expiry durable, before any purge.
          for (const message of expired) {
            metrics.increment('tandem_c2d_expired_total');
            live.publish({ type: 'message-expired', deviceId: message.deviceId, seq: message.seq });
          }
          if (expired.length > 0) log(`queue: ${expired.length} cloud-to-device message(s) expired unacknowledged`);
          if (purge) {
            await repository.purgeMessages(now() - cloudMessageRetentionMs);
            await repository.purgeStateChanges(now() - stateChangeRetentionMs);
          }
        })
        .catch((error: Error) => log(`queue: expiry sweep failed: ${error.message}`))
        .finally(() => {
          sweeping = false;
        });
    }, options.expirySweepMs ?? 1000);
    cleanups.push(() => clearInterval(sweep));

    const api = createHttpApi({
      repository, live, metrics, adminToken: admin.token, isConnected: (id) => transport.isConnected(id), now, templates, rpcRoutes, downstream,
    });
    // The dashboard is always there; `npm start` passes its own handler, which adds the fleet controls.
    const extension = options.httpExtension ?? createDashboardHandler({ adminToken: admin.token });
    const http: Server = createServer((request, response) => {
      if (!extension(request, response)) api.handle(request, response);
    });
    const httpHost = options.httpHost ?? '0.0.0.0';
    const httpPort = await listen(http, options.httpPort ?? 8080, httpHost, (p) => `HTTP port ${p} is already in use. Choose another with --http-port N.`);
    cleanups.push(
      () =>
        new Promise<void>((done) => {
          api.closeStreams();
          http.close(() => done());
          http.closeAllConnections();
        }),
    );
    log(`http: API on http://${httpHost === '0.0.0.0' ? '127.0.0.1' : httpHost}:${httpPort}/api (OpenAPI at /api/openapi.json, metrics at /metrics, dashboard at /dashboard/)`);

    return {
      dataDir,
      storage,
      mqttPort,
      mqttsPort,
      caCertPath,
      httpPort,
      broker: embedded,
      adminToken: admin.token,
      adminTokenCreated: admin.created,
      context,
      downstream,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
