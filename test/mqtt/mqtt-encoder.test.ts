// Golden bytes for every packet the device's MQTT client sends (MQTT 3.1.1), annotated field by
// field, plus the size limits: a packet that does not fit its buffer is a code, never an overrun.
import { describe, expect, it } from 'vitest';
import { mqttDisconnect, mqttErrorTooLarge, mqttPingreq } from '../../firmware/core/mqtt/mqtt-codes.ts';
import {
  encodeConnect, encodeEmpty, encodePuback, encodePublish, encodeSubscribe, publishPacketBytes,
  type MqttConnectFields,
} from '../../firmware/core/mqtt/mqtt-encoder.ts';

/** Hex with spaces and comments (`# ...` to end of line) to bytes. */
function golden(annotated: string): number[] {
  const hex = annotated.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < hex.length; i += 2) bytes.push(parseInt(hex.slice(i, i + 2), 16));
  return bytes;
}

function ascii(text: string): string {
  return Buffer.from(text, 'latin1').toString('hex');
}

function encoded(encode: (buf: Uint8Array) => number, size = 256): number[] {
  const buf = new Uint8Array(size).fill(0xee);
  const length = encode(buf);
  expect(length).toBeGreaterThan(0);
  // Nothing written past the returned length.
  expect(buf[length]).toBe(0xee);
  return [...buf.subarray(0, length)];
}

const deviceFields: MqttConnectFields = {
  clientId: 'dev1',
  username: 'dev1',
  password: 'pw',
  cleanSession: false,
  keepAliveSec: 60,
  willTopic: 't/dev1/p',
  willPayload: '0',
  willQos: 1,
  willRetain: true,
};

describe('MQTT encoder golden bytes', () => {
  it('CONNECT with user name, password, Last Will (qos 1, retained), persistent session', () => {
    expect(encoded((buf) => encodeConnect(buf, 0, deviceFields))).toEqual(golden(`
      10 27                 # CONNECT, remaining length 39
      0004 ${ascii('MQTT')} # protocol name
      04                    # protocol level 4 = 3.1.1
      ec                    # flags: user 80 | password 40 | will retain 20 | will qos1 08 | will 04, clean 0
      003c                  # keepalive 60 s
      0004 ${ascii('dev1')} # client id
      0008 ${ascii('t/dev1/p')} # will topic
      0001 ${ascii('0')}    # will payload
      0004 ${ascii('dev1')} # user name
      0002 ${ascii('pw')}   # password
    `));
  });

  it('CONNECT with clean session, no will, no credentials', () => {
    const fields: MqttConnectFields = { ...deviceFields, username: null, password: null, willTopic: null, cleanSession: true, keepAliveSec: 0 };
    expect(encoded((buf) => encodeConnect(buf, 0, fields))).toEqual(golden(`
      10 10 0004 ${ascii('MQTT')} 04
      02                    # flags: clean session only
      0000                  # keepalive off
      0004 ${ascii('dev1')}
    `));
  });

  it('PUBLISH qos 1 with packet id, and the same with DUP and retain', () => {
    const payload = new Uint8Array([0x00, 0xff, 0x41]);
    expect(encoded((buf) => encodePublish(buf, 0, 't/a/u', payload, 1, false, false, 0x1234))).toEqual(golden(`
      32 0c                 # PUBLISH qos 1 (0x30 | 1<<1), remaining 12
      0005 ${ascii('t/a/u')} # topic
      1234                  # packet id
      00ff41                # payload bytes, 0xff included
    `));
    expect(encoded((buf) => encodePublish(buf, 0, 't/a/u', payload, 1, true, true, 1))[0]).toBe(0x3b); // 0x30 | dup 8 | qos1 2 | retain 1
  });

  it('PUBLISH qos 0 retained from a byte string: no packet id', () => {
    expect(encoded((buf) => encodePublish(buf, 0, 't/a/p', '1', 0, true, false, 99))).toEqual(golden(`
      31 08                 # PUBLISH qos 0 retained
      0005 ${ascii('t/a/p')}
      31                    # payload "1"
    `));
  });

  it('PUBLISH with a two-byte remaining length (200 bytes of payload)', () => {
    const bytes = encoded((buf) => encodePublish(buf, 0, 't', new Uint8Array(200).fill(7), 1, false, false, 2), 512);
    // remaining = 2 + 1 + 2 + 200 = 205 = 0xcd -> varint cd 01
    expect(bytes.slice(0, 8)).toEqual(golden('32 cd01 0001 74 0002'));
    expect(bytes.length).toBe(3 + 205);
    expect(publishPacketBytes(1, 200, 1)).toBe(bytes.length);
  });

  it('PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT', () => {
    expect(encoded((buf) => encodePuback(buf, 0, 0xbeef))).toEqual(golden('40 02 beef'));
    expect(encoded((buf) => encodeSubscribe(buf, 0, 7, 't/dev1/d', 1))).toEqual(golden(`
      82 0d                 # SUBSCRIBE, reserved flags 0010 [MQTT-3.8.1-1], remaining 13
      0007                  # packet id
      0008 ${ascii('t/dev1/d')} # topic filter
      01                    # requested qos
    `));
    expect(encoded((buf) => encodeEmpty(buf, 0, mqttPingreq))).toEqual(golden('c0 00'));
    expect(encoded((buf) => encodeEmpty(buf, 0, mqttDisconnect))).toEqual(golden('e0 00'));
  });

  it('encodes at an offset and refuses packets that do not fit, writing nothing past the end', () => {
    const buf = new Uint8Array(12).fill(0xee);
    expect(encodePuback(buf, 8, 5)).toBe(4);
    expect([...buf.subarray(8)]).toEqual([0x40, 2, 0, 5]);
    expect(encodePuback(buf, 9, 5)).toBe(mqttErrorTooLarge);
    const small = new Uint8Array(16).fill(0xee);
    expect(encodePublish(small, 0, 't/a/u', new Uint8Array(10), 1, false, false, 1)).toBe(mqttErrorTooLarge);
    expect(encodeConnect(small, 0, deviceFields)).toBe(mqttErrorTooLarge);
    expect(encodeSubscribe(small, 0, 1, 'a/very/long/topic/filter', 1)).toBe(mqttErrorTooLarge);
    expect([...small].every((b) => b === 0xee)).toBe(true);
  });
});
