// The MQTT client on a virtual clock against a scripted broker (no TCP): backoff with jitter,
// timeouts, keepalive, the in-flight ring (wrap-around, out-of-order acks, DUP resends), packet ids,
// and events that stop the client from inside a callback. Every run replays from its seed.
import { describe, expect, it } from 'vitest';
import type { Network, Socket, SocketHandlers } from '../../firmware/hal/socket.ts';
import {
  MqttClient, mqttStateConnected, mqttStateStopped, mqttStateWaiting, type MqttClientOptions,
} from '../../firmware/core/mqtt/mqtt-client.ts';
import { mqttErrorTooLarge, mqttErrorWindowFull, mqttOk, mqttPublish } from '../../firmware/core/mqtt/mqtt-codes.ts';
import { MqttPacketParser } from '../../firmware/core/mqtt/mqtt-parser.ts';
import { mqttInFlightBytesMax, mqttPacketBytesMax } from '../../firmware/protocol/limits.ts';
import { RecordingEvents } from './helpers/client-harness.ts';
import { SeededRandom } from './helpers/seeded-random.ts';

class ScriptedSocket implements Socket {
  written: number[][] = [];
  closed = false;
  constructor(readonly handlers: SocketHandlers) {}
  write(data: Uint8Array, offset: number, length: number): boolean {
    if (this.closed) return false;
    this.written.push([...data.subarray(offset, offset + length)]);
    return true;
  }
  close(): void {
    this.closed = true;
  }
  /** The broker side: accept the TCP connection and the CONNECT. */
  accept(sessionPresent = false): void {
    this.handlers.onConnect();
    this.handlers.onData(String.fromCharCode(0x20, 2, sessionPresent ? 1 : 0, 0));
  }
  types(): number[] {
    return this.written.map((packet) => packet[0] >> 4);
  }
}

class ScriptedNetwork implements Network {
  sockets: ScriptedSocket[] = [];
  /** When set, connect fails the way a Linux build does: before connect() returns. */
  refuseSynchronously = false;
  connect(_host: string, _port: number, _secure: boolean, handlers: SocketHandlers): Socket {
    const socket = new ScriptedSocket(handlers);
    this.sockets.push(socket);
    if (this.refuseSynchronously) handlers.onClose(true);
    return socket;
  }
  get last(): ScriptedSocket {
    return this.sockets[this.sockets.length - 1];
  }
}

const options: MqttClientOptions = {
  host: 'broker', port: 1883, secure: false, clientId: 'dev', username: null, password: null,
  presenceTopic: null, cleanSession: false, keepAliveSec: 10, responseTimeoutMs: 2000, retransmitMs: 5000,
  backoffMsMin: 1000, backoffMsMax: 16000, authRetryMs: 100000,
};

/** Decodes one PUBLISH the client wrote, with the client's own parser (broker-side view). */
function decodePublish(bytes: number[]): { dup: boolean; packetId: number; payload: string } {
  const parser = new MqttPacketParser(mqttPacketBytesMax);
  let decoded = { dup: false, packetId: -1, payload: '' };
  const code = parser.feed(String.fromCharCode(...bytes), {
    onPacket(p) {
      expect(p.type).toBe(mqttPublish);
      decoded = { dup: (p.flags & 8) !== 0, packetId: p.packetId, payload: Buffer.from(p.body.subarray(p.payloadOffset, p.remaining)).toString('latin1') };
      return mqttOk;
    },
  });
  expect(code).toBe(mqttOk);
  return decoded;
}

function make(seed = 1, extra: Partial<MqttClientOptions> = {}): { client: MqttClient; network: ScriptedNetwork; events: RecordingEvents } {
  const network = new ScriptedNetwork();
  const events = new RecordingEvents();
  const client = new MqttClient(network, new SeededRandom(seed), events, { ...options, ...extra });
  return { client, network, events };
}

function backoffSequence(seed: number, attempts: number): number[] {
  const { client, network } = make(seed);
  network.refuseSynchronously = true;
  let now = 0;
  client.start(now);
  const delays: number[] = [];
  for (let i = 0; i < attempts; i++) {
    expect(client.state).toBe(mqttStateWaiting);
    const delay = client.retryInMs();
    delays.push(delay);
    client.tick(now + delay - 1);
    expect(network.sockets.length).toBe(i + 1); // not a millisecond early
    now += delay;
    client.tick(now);
    expect(network.sockets.length).toBe(i + 2);
  }
  return delays;
}

describe('MQTT client (virtual clock, scripted broker)', () => {
  it('backs off exponentially with jitter in [ceiling/2, ceiling], capped, replayable from the seed', () => {
    const delays = backoffSequence(5, 9);
    const ceilings = [1000, 2000, 4000, 8000, 16000, 16000, 16000, 16000, 16000];
    delays.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(ceilings[i] / 2);
      expect(delay).toBeLessThanOrEqual(ceilings[i]);
    });
    expect(backoffSequence(5, 9)).toEqual(delays);
    expect(backoffSequence(6, 9)).not.toEqual(delays);
  });

  it('resets the backoff after an accepted connection', () => {
    const { client, network } = make(3);
    client.start(0);
    network.last.handlers.onClose(true);
    client.tick(20000);
    network.last.handlers.onClose(true); // second failure: ceiling 2000
    expect(client.retryInMs()).toBeGreaterThan(1000);
    client.tick(40000);
    network.last.accept();
    expect(client.state).toBe(mqttStateConnected);
    network.last.handlers.onClose(false);
    expect(client.retryInMs()).toBeLessThanOrEqual(1000);
  });

  it('times out a connection that never gets its CONNACK, and ignores the stale socket afterwards', () => {
    const { client, network, events } = make();
    client.start(0);
    const first = network.last;
    first.handlers.onConnect();
    expect(first.types()).toEqual([1]); // CONNECT
    client.tick(1999);
    expect(client.state).not.toBe(mqttStateWaiting);
    client.tick(2000);
    expect(events.disconnects).toEqual(['broker did not answer in time']);
    expect(first.closed).toBe(true);
    // Late events of the abandoned connection change nothing.
    first.handlers.onData('\x20\x02\x00\x00');
    first.handlers.onClose(true);
    expect(client.state).toBe(mqttStateWaiting);
    expect(events.connects).toEqual([]);
    expect(events.disconnects.length).toBe(1);
  });

  it('sends PINGREQ after keepalive of quiet, and declares the link dead without PINGRESP', () => {
    const { client, network, events } = make();
    client.start(0);
    network.last.accept();
    client.tick(9999);
    expect(network.last.types()).toEqual([1]);
    client.tick(10000);
    expect(network.last.written[1]).toEqual([0xc0, 0]); // PINGREQ
    network.last.handlers.onData('\xd0\x00'); // PINGRESP
    client.tick(15000);
    expect(client.state).toBe(mqttStateConnected);
    client.tick(20000);
    expect(network.last.written.length).toBe(3); // second PINGREQ
    client.tick(21999);
    expect(client.state).toBe(mqttStateConnected);
    client.tick(22000);
    expect(events.disconnects).toEqual(['broker did not answer in time']);
  });

  it('handles a connect refused before connect() returns (Linux builds)', () => {
    const { client, network, events } = make();
    network.refuseSynchronously = true;
    client.start(0);
    expect(client.state).toBe(mqttStateWaiting);
    expect(events.disconnects).toEqual(['connection lost']);
    network.refuseSynchronously = false;
    client.tick(client.retryInMs());
    network.last.accept();
    expect(client.state).toBe(mqttStateConnected);
  });

  it('keeps the in-flight ring intact through wrap-around, out-of-order acks and reconnects [seeded model]', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = new SeededRandom(seed);
      const { client, network, events } = make(seed);
      let now = 0;
      client.start(now);
      network.last.accept();
      /** The model: packet id -> payload of every accepted, unacknowledged publish, in order. */
      const model = new Map<number, string>();
      let refused = 0;
      for (let step = 0; step < 400; step++) {
        const action = random.below(10);
        if (action < 5) {
          const payload = `p${step}:` + 'y'.repeat(random.below(700));
          const result = client.publish('t/dev/u', payload, 1, false);
          if (result === mqttErrorWindowFull) {
            // Only unacknowledged publishes can hold the store: an empty one takes any packet.
            expect(model.size).toBeGreaterThan(0);
            refused++;
          } else {
            expect(result).toBeGreaterThan(0);
            expect(model.has(result)).toBe(false);
            model.set(result, payload);
          }
        } else if (action < 8 && model.size > 0 && client.state === mqttStateConnected) {
          const ids = [...model.keys()];
          const id = ids[random.below(ids.length)]; // any order, not only the oldest
          network.last.handlers.onData(String.fromCharCode(0x40, 2, id >> 8, id & 255));
          expect(events.acked[events.acked.length - 1]).toBe(id);
          model.delete(id);
        } else if (action === 8) {
          network.last.handlers.onClose(true);
          now += 20000;
          client.tick(now);
          const socket = network.last;
          socket.accept(true);
          // Every unacknowledged publish is resent in order, DUP set, bytes intact.
          const resent = socket.written.slice(1).map(decodePublish);
          expect(resent.map((p) => p.packetId)).toEqual([...model.keys()]);
          for (const p of resent) {
            expect(p.dup).toBe(true);
            expect(p.payload).toBe(model.get(p.packetId));
          }
        }
        expect(client.inFlight()).toBe(model.size);
      }
      expect(refused).toBeGreaterThan(0); // the window really filled up
    }
  });

  it('counts packet ids 1..65535 and wraps to 1, never 0', () => {
    const { client, network } = make();
    client.start(0);
    network.last.accept();
    let last = 0;
    for (let i = 0; i < 65536; i++) {
      last = client.publish('t', '', 1, false);
      network.last.handlers.onData(String.fromCharCode(0x40, 2, last >> 8, last & 255));
    }
    expect(last).toBe(1);
    expect(client.inFlight()).toBe(0);
  });

  it('refuses what cannot fit and throws on QoS 2 (a caller bug)', () => {
    const { client } = make();
    expect(client.publish('t', new Uint8Array(mqttPacketBytesMax), 1, false)).toBe(mqttErrorTooLarge);
    expect(() => client.publish('t', 'x', 2, false)).toThrow();
    expect(mqttInFlightBytesMax).toBeGreaterThanOrEqual(mqttPacketBytesMax);
  });

  it('retransmits after retransmitMs on the same connection with DUP set', () => {
    const { client, network } = make();
    client.start(0);
    network.last.accept();
    client.publish('t', 'a', 1, false);
    client.tick(4999);
    expect(network.last.types()).toEqual([1, 3]);
    client.tick(5000);
    const copies = network.last.written.filter((p) => p[0] >> 4 === 3);
    expect(copies.map((p) => p[0])).toEqual([0x32, 0x3a]);
    expect(copies[1].slice(1)).toEqual(copies[0].slice(1));
  });

  it('survives an event handler that stops the client in the middle of a chunk', () => {
    const { client, network, events } = make();
    client.start(0);
    network.last.accept();
    let calls = 0;
    events.onMessage = () => {
      calls++;
      client.stop();
    };
    // Two QoS 1 PUBLISHes in one chunk: the first stops the client, the second is never delivered.
    network.last.handlers.onData('\x32\x05\x00\x01t\x00\x01' + '\x32\x05\x00\x01t\x00\x02');
    expect(calls).toBe(1);
    expect(client.state).toBe(mqttStateStopped);
    expect(network.last.types()).toEqual([1, 14]); // CONNECT, DISCONNECT: no PUBACK after stop
    expect(events.disconnects).toEqual(['stopped']);
  });

  it('acknowledges a QoS 1 message after delivering it, and re-subscribes when the session is gone', () => {
    const { client, network, events } = make(1, { presenceTopic: 't/dev/p' });
    events.afterConnect = (sessionPresent) => {
      if (!sessionPresent) client.subscribe('t/dev/d', 1);
    };
    client.start(0);
    network.last.accept(false);
    network.last.handlers.onData('\x32\x08\x00\x01t\x12\x34abc');
    expect(events.messages).toEqual([{ topic: 't', payload: 'abc' }]);
    expect(network.last.written.map((p) => p[0])).toEqual([0x10, 0x31, 0x82, 0x40]); // CONNECT, presence, SUBSCRIBE, PUBACK
    expect(network.last.written[3]).toEqual([0x40, 2, 0x12, 0x34]);
    expect(Buffer.from(network.last.written[0]).includes(Buffer.from('t/dev/p'))).toBe(true); // Last Will
  });
});
