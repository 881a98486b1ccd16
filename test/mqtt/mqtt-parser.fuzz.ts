// Seeded fuzzer for the MQTT parser: random garbage and mutated valid streams, fed in random
// fragments. The parser may only ever answer with a code from its closed set; it must not throw,
// hang, grow its buffer or hand the sink a packet whose fields point outside the body.
// `fuzzMqttParser(seed, cases)` is the loop the project's fuzz runner calls; a short seeded run
// lives in mqtt-parser.test.ts.
import {
  mqttErrorMalformed, mqttErrorTooLarge, mqttErrorUnexpected, mqttOk, mqttPublish,
} from '../../firmware/core/mqtt/mqtt-codes.ts';
import { MqttPacketParser, type MqttPacketSink } from '../../firmware/core/mqtt/mqtt-parser.ts';
import { SeededRandom } from './helpers/seeded-random.ts';

export const summary = 'MQTT 3.1.1 client-side packet parser (firmware/core/mqtt/mqtt-parser.ts)';

export interface FuzzResult {
  cases: number;
  /** How often each result code came back, by code. */
  codes: Record<string, number>;
  packets: number;
}

/** Well-formed packets a broker sends, as byte strings, to mutate. */
const seeds: string[] = [
  '\x20\x02\x00\x00', // CONNACK accepted
  '\x20\x02\x01\x00', // CONNACK session present
  '\x20\x02\x00\x04', // CONNACK bad credentials
  '\x40\x02\x00\x07', // PUBACK 7
  '\x90\x03\x00\x08\x01', // SUBACK 8 granted qos 1
  '\xd0\x00', // PINGRESP
  '\x30\x08\x00\x03a/b\xff\x00\x01', // PUBLISH qos 0
  '\x32\x0a\x00\x03a/b\x12\x34xyz', // PUBLISH qos 1 id 0x1234
  '\x3b\x07\x00\x01t\x00\x02ok', // PUBLISH dup qos 1 retain
];

const allowed = new Set([mqttOk, mqttErrorMalformed, mqttErrorTooLarge, mqttErrorUnexpected]);

class CheckingSink implements MqttPacketSink {
  packets = 0;
  onPacket(packet: MqttPacketParser): number {
    this.packets++;
    if (packet.remaining > packet.body.length) throw new Error(`packet length ${packet.remaining} beyond the receive buffer`);
    if (packet.type === mqttPublish) {
      if (packet.topicLength < 1 || 2 + packet.topicLength > packet.payloadOffset || packet.payloadOffset > packet.remaining) {
        throw new Error(`PUBLISH fields out of bounds: topic ${packet.topicLength}, payload at ${packet.payloadOffset} of ${packet.remaining}`);
      }
      if (packet.qos === 1 && packet.packetId === 0) throw new Error('QoS 1 PUBLISH with packet id 0');
    }
    return mqttOk;
  }
}

function randomBytes(random: SeededRandom, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(random.below(256));
  return text;
}

/** A stream for one case: pure garbage, or valid packets with a few bytes flipped, cut or inserted. */
function makeCase(random: SeededRandom): string {
  if (random.below(4) === 0) return randomBytes(random, 1 + random.below(3000));
  let stream = '';
  const count = 1 + random.below(8);
  for (let i = 0; i < count; i++) stream += seeds[random.below(seeds.length)];
  const mutations = random.below(4);
  for (let m = 0; m < mutations; m++) {
    const at = random.below(stream.length + 1);
    const kind = random.below(3);
    if (kind === 0) stream = stream.slice(0, at) + String.fromCharCode(random.below(256)) + stream.slice(at + 1);
    else if (kind === 1) stream = stream.slice(0, at) + stream.slice(at + 1 + random.below(4));
    else stream = stream.slice(0, at) + randomBytes(random, 1 + random.below(6)) + stream.slice(at);
  }
  return stream;
}

/** Runs `cases` seeded cases; throws (with the seed and case) on the first contract breach. */
export function fuzzMqttParser(seed: number, cases: number): FuzzResult {
  const random = new SeededRandom(seed);
  const parser = new MqttPacketParser(256);
  const body = parser.body;
  const sink = new CheckingSink();
  const codes: Record<string, number> = {};
  for (let c = 0; c < cases; c++) {
    const stream = makeCase(random);
    parser.reset();
    let result = mqttOk;
    let at = 0;
    while (at < stream.length) {
      const size = 1 + random.below(random.below(2) === 0 ? 4 : 600);
      try {
        result = parser.feed(stream.slice(at, at + size), sink);
      } catch (error) {
        throw new Error(`fuzzMqttParser seed ${seed} case ${c}: threw ${String(error)} on ${Buffer.from(stream, 'latin1').toString('hex')}`);
      }
      if (!allowed.has(result)) throw new Error(`fuzzMqttParser seed ${seed} case ${c}: unknown result ${result}`);
      at += size;
      if (result !== mqttOk) {
        // A failed parser must keep answering the same code, not resume mid-stream.
        if (parser.feed('\x20\x02\x00\x00', sink) !== result) throw new Error(`fuzzMqttParser seed ${seed} case ${c}: resumed after error`);
        break;
      }
    }
    if (parser.body !== body || body.length !== 256) throw new Error('receive buffer replaced or resized');
    codes[result] = (codes[result] ?? 0) + 1;
  }
  return { cases, codes, packets: sink.packets };
}
