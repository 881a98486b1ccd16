// Runs an MqttClient in Node for the tests: records its events, ticks it on a real-time interval,
// and waits for conditions with a deadline so a broken client fails a test instead of hanging it.
import { MqttClient, type MqttClientEvents, type MqttClientOptions } from '../../../firmware/core/mqtt/mqtt-client.ts';
import { mqttCodeName } from '../../../firmware/core/mqtt/mqtt-codes.ts';
import { NodeNetwork } from '../../../hal-mocks/node-network.ts';
import { SeededRandom } from './seeded-random.ts';

export interface ReceivedMessage {
  topic: string;
  payload: string;
}

export class RecordingEvents implements MqttClientEvents {
  connects: boolean[] = [];
  messages: ReceivedMessage[] = [];
  acked: number[] = [];
  subacks: Array<{ packetId: number; grantedQos: number }> = [];
  disconnects: string[] = [];
  /** Extra hook for tests that publish from inside an event. */
  afterAck: ((packetId: number) => void) | null = null;
  /** Extra hook run on every connect, e.g. to subscribe. */
  afterConnect: ((sessionPresent: boolean) => void) | null = null;

  onConnect(sessionPresent: boolean): void {
    this.connects.push(sessionPresent);
    if (this.afterConnect !== null) this.afterConnect(sessionPresent);
  }
  onMessage(topic: string, bytes: Uint8Array, offset: number, length: number): void {
    this.messages.push({ topic, payload: Buffer.from(bytes.subarray(offset, offset + length)).toString('latin1') });
  }
  onPublishAcked(packetId: number): void {
    this.acked.push(packetId);
    if (this.afterAck !== null) this.afterAck(packetId);
  }
  onSubscribeAcked(packetId: number, grantedQos: number): void {
    this.subacks.push({ packetId, grantedQos });
  }
  onDisconnect(code: number): void {
    this.disconnects.push(mqttCodeName(code));
  }
}

export interface Harness {
  client: MqttClient;
  events: RecordingEvents;
  /** Stops the client and its tick loop. */
  close(): void;
}

export function startClient(options: Partial<MqttClientOptions> & { host: string; port: number; clientId: string }, seed = 1, tickMs = 10): Harness {
  const events = new RecordingEvents();
  const network = new NodeNetwork();
  const client = new MqttClient(network, new SeededRandom(seed), events, {
    secure: false,
    username: null,
    password: null,
    presenceTopic: null,
    cleanSession: false,
    keepAliveSec: 5,
    responseTimeoutMs: 2000,
    retransmitMs: 3000,
    backoffMsMin: 50,
    backoffMsMax: 400,
    ...options,
  });
  client.start(Date.now());
  const timer = setInterval(() => client.tick(Date.now()), tickMs);
  return {
    client,
    events,
    close() {
      clearInterval(timer);
      client.stop();
    },
  };
}

export async function waitFor(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A unique id per test run, so retained messages and sessions of earlier runs never interfere. */
export function uniqueId(prefix: string): string {
  return `${prefix}${process.pid.toString(36)}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}
