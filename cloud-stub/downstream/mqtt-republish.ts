// MQTT republish destination: every event to `<prefix>/<device>/events/<template>` and every state
// change to `<prefix>/<device>/state/<side>`, JSON payloads carrying their ids. With QoS 1 a batch
// counts as delivered only when the broker has acknowledged every message of it.
import mqtt, { type MqttClient } from 'mqtt';
import type { StateChange, StoredEvent } from '../storage/repository.ts';
import { eventJson, stateChangeJson, untilAborted, type Destination } from './destination.ts';

export class MqttRepublishDestination implements Destination {
  private readonly client: MqttClient;

  constructor(
    route: string,
    url: string,
    private readonly topicPrefix: string,
    private readonly qos: 0 | 1,
    credentials: { username?: string; password?: string },
  ) {
    this.client = mqtt.connect(url, {
      clientId: `tandem-downstream-${route}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      username: credentials.username,
      password: credentials.password,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      // Offline publishes would pile up in memory; the route retries from its cursor instead.
      queueQoSZero: false,
    });
    // Connection errors show as failed deliveries (the client is not connected); not a crash.
    this.client.on('error', () => {});
  }

  deliverEvents(events: StoredEvent[], signal: AbortSignal): Promise<void> {
    return this.publishAll(
      events.map((event) => ({ topic: `${this.topicPrefix}/${event.deviceId}/events/${event.templateId}`, payload: JSON.stringify(eventJson(event)) })),
      signal,
    );
  }

  deliverStateChanges(changes: StateChange[], signal: AbortSignal): Promise<void> {
    return this.publishAll(
      changes.map((change) => ({ topic: `${this.topicPrefix}/${change.deviceId}/state/${change.side}`, payload: JSON.stringify(stateChangeJson(change)) })),
      signal,
    );
  }

  private async publishAll(messages: Array<{ topic: string; payload: string }>, signal: AbortSignal): Promise<void> {
    if (!this.client.connected) throw new Error('not connected to the MQTT broker');
    await untilAborted(Promise.all(messages.map((message) => this.client.publishAsync(message.topic, message.payload, { qos: this.qos }))), signal);
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
