// The incremental MQTT parser: every packet type a broker sends, any fragmentation (split at every
// byte), many packets per chunk, malformed and oversized input as codes, and a short seeded fuzz run.
import { describe, expect, it } from 'vitest';
import {
  mqttConnack, mqttErrorMalformed, mqttErrorTooLarge, mqttErrorUnexpected, mqttOk, mqttPingresp, mqttPuback,
  mqttPublish, mqttSuback,
} from '../../firmware/core/mqtt/mqtt-codes.ts';
import { MqttPacketParser, type MqttPacketSink } from '../../firmware/core/mqtt/mqtt-parser.ts';
import { fuzzMqttParser } from './mqtt-parser.fuzz.ts';

/** Describes each packet as one line, so whole streams compare as arrays of strings. */
class RecordingSink implements MqttPacketSink {
  lines: string[] = [];
  onPacket(p: MqttPacketParser): number {
    const body = p.body;
    const text = (from: number, to: number): string => Buffer.from(body.subarray(from, to)).toString('latin1');
    if (p.type === mqttConnack) this.lines.push(`connack rc=${p.returnCode} session=${p.sessionPresent}`);
    else if (p.type === mqttPuback) this.lines.push(`puback ${p.packetId}`);
    else if (p.type === mqttSuback) this.lines.push(`suback ${p.packetId} granted=${p.returnCode}`);
    else if (p.type === mqttPingresp) this.lines.push('pingresp');
    else if (p.type === mqttPublish) {
      this.lines.push(`publish qos=${p.qos} id=${p.packetId} dup=${(p.flags & 8) !== 0} retain=${(p.flags & 1) !== 0} ${text(2, 2 + p.topicLength)} ${text(p.payloadOffset, p.remaining)}`);
    } else this.lines.push(`type ${p.type}`);
    return mqttOk;
  }
}

const bigPayload = 'x'.repeat(300); // needs a two-byte remaining length
const stream =
  '\x20\x02\x01\x00' + // CONNACK session present
  '\x90\x03\x00\x08\x01' + // SUBACK id 8 granted 1
  '\x30\x08\x00\x03a/b\xff\x00\x01' + // PUBLISH qos 0, binary payload
  '\x3b\x0a\x00\x03a/b\x12\x34xyz' + // PUBLISH dup qos 1 retain, id 0x1234
  '\x32' + '\xb1\x02' + '\x00\x01t\x00\x09' + bigPayload + // PUBLISH qos 1, remaining 0x131 = 305
  '\x30\x03\x00\x01t' + // PUBLISH qos 0, empty payload
  '\x40\x02\x00\x07' + // PUBACK 7
  '\xd0\x00'; // PINGRESP
const expected = [
  'connack rc=0 session=true',
  'suback 8 granted=1',
  'publish qos=0 id=0 dup=false retain=false a/b \xff\x00\x01',
  'publish qos=1 id=4660 dup=true retain=true a/b xyz',
  `publish qos=1 id=9 dup=false retain=false t ${bigPayload}`,
  'publish qos=0 id=0 dup=false retain=false t ',
  'puback 7',
  'pingresp',
];

function parseInChunks(chunks: string[], bufferBytes = 1024): { code: number; lines: string[] } {
  const parser = new MqttPacketParser(bufferBytes);
  const sink = new RecordingSink();
  let code = mqttOk;
  for (const chunk of chunks) {
    code = parser.feed(chunk, sink);
    if (code !== mqttOk) break;
  }
  return { code, lines: sink.lines };
}

describe('MQTT parser', () => {
  it('parses many packets from one chunk', () => {
    expect(parseInChunks([stream])).toEqual({ code: mqttOk, lines: expected });
  });

  it('parses the same stream one byte at a time', () => {
    expect(parseInChunks(stream.split(''))).toEqual({ code: mqttOk, lines: expected });
  });

  it('parses the same stream split in two at every byte, and in three at many pairs', () => {
    for (let at = 0; at <= stream.length; at++) {
      expect(parseInChunks([stream.slice(0, at), stream.slice(at)]).lines, `split at ${at}`).toEqual(expected);
    }
    for (let a = 0; a <= stream.length; a += 7) {
      for (let b = a; b <= stream.length; b += 5) {
        expect(parseInChunks([stream.slice(0, a), stream.slice(a, b), stream.slice(b)]).lines).toEqual(expected);
      }
    }
  });

  it('refuses a packet larger than the receive buffer before buffering it', () => {
    const result = parseInChunks(['\x20\x02\x00\x00', '\x30\x81\x02'], 128); // remaining 257 > 128
    expect(result).toEqual({ code: mqttErrorTooLarge, lines: ['connack rc=0 session=false'] });
  });

  it.each([
    ['reserved type 0', '\x00\x00', mqttErrorMalformed],
    ['reserved type 15', '\xf0\x00', mqttErrorMalformed],
    ['CONNECT from a broker', '\x10\x00', mqttErrorUnexpected],
    ['SUBSCRIBE from a broker', '\x82\x00', mqttErrorUnexpected],
    ['PUBLISH qos 3', '\x36\x00', mqttErrorMalformed],
    ['PUBLISH qos 2 (never subscribed for)', '\x34\x00', mqttErrorUnexpected],
    ['CONNACK with flags', '\x21\x02\x00\x00', mqttErrorMalformed],
    ['CONNACK too long', '\x20\x03\x00\x00\x00', mqttErrorMalformed],
    ['CONNACK reserved ack flags', '\x20\x02\x02\x00', mqttErrorMalformed],
    ['CONNACK return code 6', '\x20\x02\x00\x06', mqttErrorMalformed],
    ['PUBACK packet id 0', '\x40\x02\x00\x00', mqttErrorMalformed],
    ['PUBACK short', '\x40\x01\x00', mqttErrorMalformed],
    ['SUBACK bad granted qos', '\x90\x03\x00\x01\x05', mqttErrorMalformed],
    ['PINGRESP with a body', '\xd0\x01\x00', mqttErrorMalformed],
    ['PUBLISH topic longer than the packet', '\x30\x04\x00\x09ab', mqttErrorMalformed],
    ['PUBLISH empty topic', '\x30\x02\x00\x00', mqttErrorMalformed],
    ['PUBLISH qos 1 packet id 0', '\x32\x05\x00\x01t\x00\x00', mqttErrorMalformed],
    ['PUBLISH qos 1 without room for the id', '\x32\x04\x00\x01t\x00', mqttErrorMalformed],
    ['remaining length of five bytes', '\x30\xff\xff\xff\xff\x01', mqttErrorMalformed],
  ])('answers %s with an error code, and keeps answering it until reset', (_name, bytes, code) => {
    const parser = new MqttPacketParser(1024);
    const sink = new RecordingSink();
    expect(parser.feed(bytes, sink)).toBe(code);
    expect(parser.feed('\xd0\x00', sink)).toBe(code);
    expect(sink.lines).toEqual([]);
    parser.reset();
    expect(parser.feed('\xd0\x00', sink)).toBe(mqttOk);
    expect(sink.lines).toEqual(['pingresp']);
  });

  it('stops at the first packet the sink refuses and returns its code', () => {
    const parser = new MqttPacketParser(64);
    let seen = 0;
    const code = parser.feed('\xd0\x00\xd0\x00\xd0\x00', { onPacket: () => (++seen === 2 ? -42 : mqttOk) });
    expect(code).toBe(-42);
    expect(seen).toBe(2);
  });

  it('survives a seeded fuzz run with only error codes [fuzz seed 1..3]', () => {
    for (let seed = 1; seed <= 3; seed++) {
      const result = fuzzMqttParser(seed, 700);
      expect(result.cases).toBe(700);
      // Both outcomes must occur, or the fuzzer is not exercising the parser.
      expect(result.codes[mqttOk]).toBeGreaterThan(0);
      expect(result.codes[mqttErrorMalformed]).toBeGreaterThan(0);
      expect(result.packets).toBeGreaterThan(100);
    }
  });
});
