// The external broker mode (MQTT_URL: Mosquitto, EMQX, or another cloud-stub's embedded broker):
// this process is one MQTT.js client that takes its share of every device's uplinks through a
// shared subscription (`$share/<group>/t/+/u`), so several cloud-stub processes split the load.
// Presence is subscribed unshared so every process knows which devices are connected.
// Authentication and ACLs of devices are then the external broker's job.
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { downlinkTopic } from '../firmware/protocol/topics.ts';
import { serviceClientIdPrefix } from './identity.ts';
import type { Metrics } from './metrics.ts';
import { parseUplinkTopic, UplinkDispatcher, type DeviceTransport, type Log, type UplinkHandler } from './transport.ts';

export interface ExternalBrokerOptions {
  url: string;
  /** Shared-subscription group: processes with the same group split the uplinks (default `tandem`). */
  shareGroup?: string;
  /**
   * false subscribes to the uplinks unshared, for brokers without shared subscriptions (Aedes,
   * including another cloud-stub's embedded broker); then only one process may run.
   */
  shared?: boolean;
  /** Used when the URL carries no credentials (e.g. this project's embedded broker's `$cloud`). */
  username?: string;
  password?: string;
  metrics: Metrics;
  log: Log;
  /** Extra TLS options for mqtts:// (a CA to trust). */
  caCertPem?: string;
}

/** An operating error at start-up: the broker cannot be reached or refused us. */
export class ExternalBrokerError extends Error {}

export class ExternalBroker implements DeviceTransport {
  readonly mode = 'external' as const;
  private readonly dispatcher: UplinkDispatcher;
  private readonly connected = new Set<string>();

  private constructor(
    private readonly client: MqttClient,
    private readonly options: ExternalBrokerOptions,
  ) {
    this.dispatcher = new UplinkDispatcher(options.metrics, options.log);
  }

  static async connect(options: ExternalBrokerOptions): Promise<ExternalBroker> {
    const group = options.shareGroup ?? 'tandem';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(group)) throw new ExternalBrokerError(`share group '${group}' must be 1 to 64 characters of A-Z a-z 0-9 _ -`);
    const parsed = new URL(options.url);
    const client = mqtt.connect(options.url, {
      clientId: serviceClientIdPrefix + randomBytes(6).toString('hex'),
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      ...(parsed.username === '' && options.username !== undefined ? { username: options.username, password: options.password } : {}),
      ...(options.caCertPem !== undefined ? { ca: options.caCertPem } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        client.end(true);
        reject(new ExternalBrokerError(`cannot use the MQTT broker at ${options.url}: ${error.message}`));
      };
      client.once('error', onError);
      client.once('connect', () => {
        client.off('error', onError);
        resolve();
      });
    });
    const broker = new ExternalBroker(client, options);
    client.on('message', (topic, payload) => broker.receive(topic, payload));
    client.on('error', (error) => options.log(`mqtt (external): ${error.message}`));
    try {
      // QoS 1 on the uplink: the broker keeps the message for us while this process reconnects.
      const uplinkFilter = options.shared === false ? 't/+/u' : `$share/${group}/t/+/u`;
      const granted = await client.subscribeAsync({ [uplinkFilter]: { qos: 1 }, 't/+/p': { qos: 1 } });
      if (granted.some((g) => (g.qos & 0x80) !== 0)) throw new Error('the broker refused the subscriptions');
    } catch (error) {
      client.end(true);
      throw new ExternalBrokerError(`the MQTT broker at ${options.url} refused the shared subscription: ${(error as Error).message}`);
    }
    return broker;
  }

  private receive(topic: string, payload: Buffer): void {
    const parsed = parseUplinkTopic(topic);
    if (parsed === null) return;
    if (parsed.channel === 'presence') {
      // Retained "1" while connected, the Last Will "0" when gone (topics.ts).
      const online = payload.toString('utf8') === '1';
      const was = this.connected.has(parsed.deviceId);
      if (online) this.connected.add(parsed.deviceId);
      else this.connected.delete(parsed.deviceId);
      this.options.metrics.set('tandem_mqtt_connected_devices', this.connected.size);
      if (online !== was) this.dispatcher.connection(parsed.deviceId, online);
    }
    this.dispatcher.dispatch({ deviceId: parsed.deviceId, channel: parsed.channel, payload, receivedAtMs: Date.now() });
  }

  setHandler(handler: UplinkHandler): void {
    this.dispatcher.setHandler(handler);
  }

  async sendDownlink(deviceId: string, payload: Uint8Array, qos: 0 | 1 = 1): Promise<void> {
    await this.client.publishAsync(downlinkTopic(deviceId), Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), { qos });
    this.options.metrics.increment('tandem_downlink_messages_total');
  }

  connectedDeviceIds(): string[] {
    return [...this.connected].sort();
  }

  isConnected(deviceId: string): boolean {
    return this.connected.has(deviceId);
  }

  whenIdle(): Promise<void> {
    return this.dispatcher.whenIdle();
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
