// The embedded MQTT broker (Aedes): device authentication against the registry, per-device ACLs,
// TCP and TLS listeners, and `handle(stream)` so tests can run it over in-memory duplex pairs.
// Authenticated uplinks go to the sync session through the DeviceTransport seam.
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import { cloudUplinkPayloadBytesMax } from '../firmware/protocol/limits.ts';
import { downlinkTopic } from '../firmware/protocol/topics.ts';
import { mayPublish, maySubscribe, type Identity } from './acl.ts';
import { secretsEqual, serviceClientIdPrefix, serviceUsername, type CredentialVerifier } from './identity.ts';
import type { Metrics } from './metrics.ts';
import { parseUplinkTopic, UplinkDispatcher, type DeviceTransport, type Log, type UplinkHandler } from './transport.ts';

/** An operating error at start-up: the port is taken. The message is the one line to print. */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    message: string,
  ) {
    super(message);
  }
}

export interface EmbeddedBrokerOptions {
  verifier: CredentialVerifier;
  /** Cloud-internal connections (another cloud process) authenticate with this secret; absent: refused. */
  serviceSecret?: string;
  metrics: Metrics;
  log: Log;
}

function authError(returnCode: 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** Listens on `port`; a taken port becomes a PortInUseError carrying `busyMessage`. */
export function listen(server: Server, port: number, host: string, busyMessage: (port: number) => string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') reject(new PortInUseError(port, busyMessage(port)));
      else reject(error);
    };
    const onListening = (): void => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

export class EmbeddedBroker implements DeviceTransport {
  readonly mode = 'embedded' as const;
  private readonly identities = new WeakMap<Client, Identity>();
  /** The live client of each connected device: a takeover replaces it before the old one leaves. */
  private readonly deviceClients = new Map<string, Client>();
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly dispatcher: UplinkDispatcher;
  private closed = false;

  private constructor(
    private readonly aedes: Aedes,
    private readonly options: EmbeddedBrokerOptions,
  ) {
    this.dispatcher = new UplinkDispatcher(options.metrics, options.log);
  }

  static async create(options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
    // Handlers are installed after construction (they need `this`), through the instance fields
    // Aedes reads on every call.
    const aedes = await Aedes.createBroker({ heartbeatInterval: 3_600_000, drainTimeout: 30_000, maxClientsIdLength: 64 });
    const broker = new EmbeddedBroker(aedes, options);
    broker.install();
    await new Promise<void>((resolve) => aedes.subscribe('t/+/u', broker.deliver, resolve));
    await new Promise<void>((resolve) => aedes.subscribe('t/+/p', broker.deliver, resolve));
    return broker;
  }

  private install(): void {
    const { aedes, options } = this;
    aedes.authenticate = (client, username, password, done) => {
      this.authenticate(client, username, password).then(
        (identity) => {
          this.identities.set(client, identity);
          done(null, true);
        },
        (failure: unknown) => {
          // A registry that cannot be read (database down) is "server unavailable" (3), not a bad password.
          const error = typeof (failure as Partial<AuthenticateError>).returnCode === 'number'
            ? (failure as AuthenticateError)
            : authError(3, `credential check failed: ${(failure as Error).message}`);
          options.metrics.increment('tandem_mqtt_auth_failures_total');
          options.log(`mqtt: refused ${client.id === '' ? 'a client' : `'${client.id}'`}: ${error.message}`);
          done(error, false);
        },
      );
    };
    aedes.authorizePublish = (client, packet, done) => {
      const identity = client === null ? undefined : this.identities.get(client);
      if (identity === undefined || !mayPublish(identity, packet.topic)) {
        options.metrics.increment('tandem_mqtt_acl_denials_total');
        done(new Error(`publish to '${packet.topic}' is not allowed for ${client?.id ?? 'an unknown client'}`));
        return;
      }
      if (packet.payload.length > cloudUplinkPayloadBytesMax) {
        done(new Error(`payload of ${packet.payload.length} bytes exceeds ${cloudUplinkPayloadBytesMax}`));
        return;
      }
      done(null);
    };
    aedes.authorizeSubscribe = (client, subscription, done) => {
      const identity = this.identities.get(client);
      if (identity === undefined || !maySubscribe(identity, subscription.topic)) {
        // A refused subscription gets SUBACK 0x80 (MQTT 3.1.1); the connection stays up.
        options.metrics.increment('tandem_mqtt_acl_denials_total');
        done(null, null);
        return;
      }
      done(null, subscription);
    };
    aedes.on('clientReady', (client) => {
      options.metrics.increment('tandem_mqtt_connections_total');
      const identity = this.identities.get(client);
      if (identity?.kind !== 'device') return;
      this.deviceClients.set(identity.deviceId, client);
      options.metrics.set('tandem_mqtt_connected_devices', this.deviceClients.size);
      this.dispatcher.connection(identity.deviceId, true);
    });
    aedes.on('clientDisconnect', (client) => {
      const identity = this.identities.get(client);
      if (identity?.kind !== 'device' || this.deviceClients.get(identity.deviceId) !== client) return;
      this.deviceClients.delete(identity.deviceId);
      options.metrics.set('tandem_mqtt_connected_devices', this.deviceClients.size);
      this.dispatcher.connection(identity.deviceId, false);
    });
    // Client errors (bad packets, ACL refusals, resets) are the client's problem; logged, not fatal.
    aedes.on('clientError', (client, error) => {
      if (!this.closed) options.log(`mqtt: ${client.id === '' ? 'client' : `'${client.id}'`}: ${error.message}`);
    });
    aedes.on('connectionError', () => {});
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Identity> {
    if (username === undefined || password === undefined) throw authError(4, 'no username or password');
    const secret = password.toString('utf8');
    if (username === serviceUsername) {
      const expected = this.options.serviceSecret;
      if (expected === undefined || !secretsEqual(secret, expected)) throw authError(4, 'wrong service credential');
      if (!client.id.startsWith(serviceClientIdPrefix)) throw authError(5, `service client id must start with '${serviceClientIdPrefix}'`);
      return { kind: 'service' };
    }
    // The client id is the device id: otherwise one device could take over another's session.
    if (client.id !== username) throw authError(5, `client id '${client.id}' differs from username '${username}'`);
    const outcome = await this.options.verifier.verify(username, secret);
    if (outcome === 'unknown-device') throw authError(4, `unknown device '${username}'`);
    if (outcome === 'bad-secret') throw authError(4, `wrong secret for '${username}'`);
    return { kind: 'device', deviceId: username };
  }

  /** Broker-level subscriber for uplink and presence topics; never blocks the broker. */
  private readonly deliver = (packet: { topic: string; payload: Buffer | string }, callback: () => void): void => {
    callback();
    const parsed = parseUplinkTopic(packet.topic);
    if (parsed === null) return;
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    this.dispatcher.dispatch({ deviceId: parsed.deviceId, channel: parsed.channel, payload, receivedAtMs: Date.now() });
  };

  /** Serves one MQTT connection over any duplex stream (TCP socket, TLS socket, in-memory pair). */
  handle(stream: Duplex): void {
    this.aedes.handle(stream);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Plain MQTT on `port` (0 picks a free one); resolves with the port bound. */
  async listenTcp(port: number, host: string): Promise<number> {
    const server = createServer((socket) => {
      this.track(socket);
      this.handle(socket);
    });
    const bound = await listen(
      server,
      port,
      host,
      (p) =>
        `MQTT port ${p} is already in use. Choose another with --mqtt-port N, or use an external broker with MQTT_URL=mqtt://host:port.`,
    );
    this.servers.push(server);
    return bound;
  }

  /** MQTT over TLS (mqtts) with the given key and certificate. */
  async listenTls(port: number, host: string, tls: { key: string; cert: string }): Promise<number> {
    const server = createTlsServer({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }, (socket) => {
      this.track(socket);
      this.handle(socket);
    });
    // A failed handshake (wrong CA on the client, plain MQTT on the TLS port) is the client's problem.
    server.on('tlsClientError', () => {});
    const bound = await listen(server, port, host, (p) => `MQTT TLS port ${p} is already in use. Choose another with --tls-port N.`);
    this.servers.push(server);
    return bound;
  }

  setHandler(handler: UplinkHandler): void {
    this.dispatcher.setHandler(handler);
  }

  sendDownlink(deviceId: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    return new Promise((resolve, reject) => {
      this.aedes.publish(
        { cmd: 'publish', topic: downlinkTopic(deviceId), payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), qos, retain: false, dup: false },
        (error) => {
          if (error) reject(error);
          else {
            this.options.metrics.increment('tandem_downlink_messages_total');
            resolve();
          }
        },
      );
    });
  }

  connectedDeviceIds(): string[] {
    return [...this.deviceClients.keys()].sort();
  }

  isConnected(deviceId: string): boolean {
    return this.deviceClients.has(deviceId);
  }

  whenIdle(): Promise<void> {
    return this.dispatcher.whenIdle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const serversClosed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    // Connections that never sent CONNECT are not Aedes clients yet: end them here.
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(serversClosed);
  }
}
