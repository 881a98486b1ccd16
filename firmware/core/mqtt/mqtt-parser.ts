// Incremental MQTT 3.1.1 parser for what a broker sends a client (CONNACK, PUBLISH, PUBACK, SUBACK,
// PINGRESP). Takes received byte strings of any fragmentation, keeps at most one packet body in a
// fixed receive buffer, and answers garbage with an error code: it never throws on input, never
// waits for more than the declared remaining length, and allocates nothing per packet.
import {
  mqttConnack, mqttErrorMalformed, mqttErrorTooLarge, mqttErrorUnexpected, mqttOk,
  mqttPingresp, mqttPuback, mqttPublish, mqttSuback,
} from './mqtt-codes.ts';

/** Receives each complete, valid packet; a non-zero return stops feed() and is returned by it. */
export interface MqttPacketSink {
  onPacket(packet: MqttPacketParser): number;
}

const stateHeader = 0;
const stateLength = 1;
const stateBody = 2;
const stateFailed = 3;

export class MqttPacketParser {
  // Fields are `declare`d and set in the constructor: field initialisers would pull a
  // define-property helper into the bundle.
  /** Body of the current packet (after the fixed header); valid during onPacket only. */
  declare readonly body: Uint8Array;
  // Fields of the packet being delivered to onPacket.
  declare type: number;
  /** Low nibble of the first byte (PUBLISH: dup 8, qos 6, retain 1). */
  declare flags: number;
  /** Remaining length: the bytes of body in use. */
  declare remaining: number;
  /** PUBLISH (QoS 1), PUBACK, SUBACK. */
  declare packetId: number;
  declare qos: number;
  /** CONNACK return code, or SUBACK's first granted QoS (128 = failure). */
  declare returnCode: number;
  declare sessionPresent: boolean;
  /** PUBLISH: the topic is body[2, 2 + topicLength), the payload body[payloadOffset, remaining). */
  declare topicLength: number;
  declare payloadOffset: number;

  declare private state: number;
  declare private lengthMultiplier: number;
  declare private received: number;
  declare private failure: number;

  constructor(receiveBufferBytes: number) {
    this.body = new Uint8Array(receiveBufferBytes);
    this.type = this.flags = this.remaining = this.packetId = this.qos = this.returnCode = 0;
    this.topicLength = this.payloadOffset = this.lengthMultiplier = this.received = 0;
    this.sessionPresent = false;
    this.reset();
  }

  /** Forgets any partial packet and a past failure: call on every new connection. */
  reset(): void {
    this.state = stateHeader;
    this.failure = mqttOk;
  }

  /**
   * Consumes `chunk`, calling sink.onPacket for each complete packet. Returns mqttOk, a parse
   * error, or what onPacket returned; after an error every call returns it again until reset().
   */
  feed(chunk: string, sink: MqttPacketSink): number {
    if (this.state === stateFailed) return this.failure;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.state === stateBody) {
        // The hot loop: copy as much of the body as this chunk holds.
        const body = this.body;
        let received = this.received;
        let end = i + this.remaining - received;
        if (end > n) end = n;
        while (i < end) body[received++] = chunk.charCodeAt(i++) & 255;
        this.received = received;
        if (received === this.remaining) {
          const code = this.complete(sink);
          if (code !== mqttOk) return this.fail(code);
        }
        continue;
      }
      const c = chunk.charCodeAt(i++) & 255;
      if (this.state === stateHeader) {
        const code = this.startPacket(c);
        if (code !== mqttOk) return this.fail(code);
        continue;
      }
      // stateLength: the remaining-length varint, at most 4 bytes ([MQTT-2.2.3]).
      this.remaining += (c & 127) * this.lengthMultiplier;
      this.lengthMultiplier *= 128;
      if (c & 128) {
        if (this.lengthMultiplier === 268435456) return this.fail(mqttErrorMalformed);
        continue;
      }
      if (this.remaining > this.body.length) return this.fail(mqttErrorTooLarge);
      this.received = 0;
      this.state = stateBody;
      if (this.remaining === 0) {
        const code = this.complete(sink);
        if (code !== mqttOk) return this.fail(code);
      }
    }
    return mqttOk;
  }

  private fail(code: number): number {
    this.state = stateFailed;
    this.failure = code;
    return code;
  }

  /** Checks the first byte at once, so that garbage is refused before any length is trusted. */
  private startPacket(firstByte: number): number {
    const type = firstByte >> 4;
    const flags = firstByte & 15;
    if (type === mqttPublish) {
      const qos = (flags >> 1) & 3;
      if (qos === 3) return mqttErrorMalformed;
      // The client subscribes with QoS 1 at most, so a QoS 2 delivery breaks the contract.
      if (qos === 2) return mqttErrorUnexpected;
      this.qos = qos;
    } else if (type === mqttConnack || type === mqttPuback || type === mqttSuback || type === mqttPingresp) {
      if (flags !== 0) return mqttErrorMalformed;
      this.qos = 0;
    } else {
      return type === 0 || type === 15 ? mqttErrorMalformed : mqttErrorUnexpected;
    }
    this.type = type;
    this.flags = flags;
    this.remaining = 0;
    this.lengthMultiplier = 1;
    this.state = stateLength;
    return mqttOk;
  }

  /** Validates the body of a complete packet, fills the fields and hands it to the sink. */
  private complete(sink: MqttPacketSink): number {
    const body = this.body;
    const length = this.remaining;
    const type = this.type;
    this.state = stateHeader;
    this.packetId = length >= 2 ? (body[0] << 8) | body[1] : 0;
    if (type === mqttConnack) {
      // [MQTT-3.2.2-1]: only bit 0 of the acknowledge flags may be set; return codes are 0..5.
      if (length !== 2 || (body[0] & 254) !== 0 || body[1] > 5) return mqttErrorMalformed;
      this.sessionPresent = body[0] === 1;
      this.returnCode = body[1];
    } else if (type === mqttPuback) {
      if (length !== 2 || this.packetId === 0) return mqttErrorMalformed;
    } else if (type === mqttSuback) {
      if (length < 3 || this.packetId === 0) return mqttErrorMalformed;
      const granted = body[2];
      if (granted > 2 && granted !== 128) return mqttErrorMalformed;
      this.returnCode = granted;
    } else if (type === mqttPingresp) {
      if (length !== 0) return mqttErrorMalformed;
    } else {
      // PUBLISH: topic (length-prefixed, at least one byte [MQTT-4.7.3-1]), packet id if QoS 1, payload.
      if (length < 2) return mqttErrorMalformed;
      const topicLength = this.packetId;
      let pos = 2 + topicLength;
      if (topicLength === 0 || pos > length) return mqttErrorMalformed;
      this.topicLength = topicLength;
      this.packetId = 0;
      if (this.qos > 0) {
        if (pos + 2 > length) return mqttErrorMalformed;
        this.packetId = (body[pos] << 8) | body[pos + 1];
        if (this.packetId === 0) return mqttErrorMalformed;
        pos += 2;
      }
      this.payloadOffset = pos;
    }
    return sink.onPacket(this);
  }
}
