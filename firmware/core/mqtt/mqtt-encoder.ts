// MQTT 3.1.1 packet encoder: writes the packets a client sends into a caller's preallocated
// Uint8Array and returns the length, or mqttErrorTooLarge when the packet does not fit.
// Strings are byte strings (char codes 0..255): callers UTF-8 encode topics before, if they must.
import { mqttConnect, mqttErrorTooLarge, mqttPuback, mqttPublish, mqttSubscribe } from './mqtt-codes.ts';

/** The fields of a CONNECT; the client keeps one of these for its whole life. */
export interface MqttConnectFields {
  clientId: string;
  /** null: no user name (and then no password either, [MQTT-3.1.2-22]). */
  username: string | null;
  password: string | null;
  cleanSession: boolean;
  keepAliveSec: number;
  /** null: no Last Will. */
  willTopic: string | null;
  willPayload: string;
  willQos: number;
  willRetain: boolean;
}

/** Bytes the remaining-length varint takes for `length` (1 to 4). */
function varintBytes(length: number): number {
  return length < 128 ? 1 : length < 16384 ? 2 : length < 2097152 ? 3 : 4;
}

/** Writes the fixed header (first byte + remaining length); returns the position after it. */
function writeFixedHeader(buf: Uint8Array, pos: number, firstByte: number, remaining: number): number {
  buf[pos++] = firstByte;
  do {
    let digit = remaining % 128;
    remaining = (remaining - digit) / 128;
    if (remaining > 0) digit |= 128;
    buf[pos++] = digit;
  } while (remaining > 0);
  return pos;
}

function writeUint16(buf: Uint8Array, pos: number, value: number): number {
  buf[pos] = (value >> 8) & 255;
  buf[pos + 1] = value & 255;
  return pos + 2;
}

/** Writes a 2-byte length then the bytes of `text`; returns the position after it. */
function writeString(buf: Uint8Array, pos: number, text: string): number {
  pos = writeUint16(buf, pos, text.length);
  for (let i = 0; i < text.length; i++) buf[pos++] = text.charCodeAt(i);
  return pos;
}

/** Whole packet size for a remaining length, or mqttErrorTooLarge when it does not fit. */
function fits(buf: Uint8Array, offset: number, remaining: number): number {
  const total = 1 + varintBytes(remaining) + remaining;
  return offset + total > buf.length ? mqttErrorTooLarge : total;
}

export function encodeConnect(buf: Uint8Array, offset: number, fields: MqttConnectFields): number {
  // Variable header: protocol name "MQTT", level 4, flags, keepalive.
  let remaining = 10 + 2 + fields.clientId.length;
  let flags = fields.cleanSession ? 2 : 0;
  if (fields.willTopic !== null) {
    remaining += 4 + fields.willTopic.length + fields.willPayload.length;
    flags |= 4 | (fields.willQos << 3) | (fields.willRetain ? 32 : 0);
  }
  if (fields.username !== null) {
    remaining += 2 + fields.username.length;
    flags |= 128;
    if (fields.password !== null) {
      remaining += 2 + fields.password.length;
      flags |= 64;
    }
  }
  const total = fits(buf, offset, remaining);
  if (total < 0) return total;
  let pos = writeFixedHeader(buf, offset, mqttConnect << 4, remaining);
  pos = writeString(buf, pos, 'MQTT');
  buf[pos++] = 4;
  buf[pos++] = flags;
  pos = writeUint16(buf, pos, fields.keepAliveSec);
  pos = writeString(buf, pos, fields.clientId);
  if (fields.willTopic !== null) {
    pos = writeString(buf, pos, fields.willTopic);
    pos = writeString(buf, pos, fields.willPayload);
  }
  if (fields.username !== null) {
    pos = writeString(buf, pos, fields.username);
    if (fields.password !== null) pos = writeString(buf, pos, fields.password);
  }
  return total;
}

/** Size of a PUBLISH, so that a caller can reserve room before encoding. */
export function publishPacketBytes(topicLength: number, payloadLength: number, qos: number): number {
  const remaining = 2 + topicLength + (qos > 0 ? 2 : 0) + payloadLength;
  return 1 + varintBytes(remaining) + remaining;
}

/** PUBLISH with QoS 0 or 1; `payload` is a byte string or bytes. packetId is ignored for QoS 0. */
export function encodePublish(buf: Uint8Array, offset: number, topic: string, payload: string | Uint8Array, qos: number, retain: boolean, dup: boolean, packetId: number): number {
  const remaining = 2 + topic.length + (qos > 0 ? 2 : 0) + payload.length;
  const total = fits(buf, offset, remaining);
  if (total < 0) return total;
  let pos = writeFixedHeader(buf, offset, (mqttPublish << 4) | (dup ? 8 : 0) | (qos << 1) | (retain ? 1 : 0), remaining);
  pos = writeString(buf, pos, topic);
  if (qos > 0) pos = writeUint16(buf, pos, packetId);
  if (typeof payload === 'string') {
    for (let i = 0; i < payload.length; i++) buf[pos++] = payload.charCodeAt(i);
  } else {
    buf.set(payload, pos);
  }
  return total;
}

export function encodePuback(buf: Uint8Array, offset: number, packetId: number): number {
  const total = fits(buf, offset, 2);
  if (total < 0) return total;
  writeUint16(buf, writeFixedHeader(buf, offset, mqttPuback << 4, 2), packetId);
  return total;
}

/** SUBSCRIBE to one topic filter ([MQTT-3.8.1-1]: the flags nibble is 0010). */
export function encodeSubscribe(buf: Uint8Array, offset: number, packetId: number, topicFilter: string, qos: number): number {
  const remaining = 2 + 2 + topicFilter.length + 1;
  const total = fits(buf, offset, remaining);
  if (total < 0) return total;
  let pos = writeFixedHeader(buf, offset, (mqttSubscribe << 4) | 2, remaining);
  pos = writeUint16(buf, pos, packetId);
  pos = writeString(buf, pos, topicFilter);
  buf[pos] = qos;
  return total;
}

/** A packet with no body: PINGREQ or DISCONNECT (pass mqttPingreq / mqttDisconnect). */
export function encodeEmpty(buf: Uint8Array, offset: number, packetType: number): number {
  const total = fits(buf, offset, 0);
  if (total < 0) return total;
  buf[offset] = packetType << 4;
  buf[offset + 1] = 0;
  return total;
}
