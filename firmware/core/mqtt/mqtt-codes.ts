// The closed set of MQTT client results and disconnect reasons, and the packet type numbers.
// Operating errors are returned as these codes (negative), never thrown.

/** Packet types as they appear in the high nibble of the first byte (MQTT 3.1.1 section 2.2.1). */
export const mqttConnect = 1;
export const mqttConnack = 2;
export const mqttPublish = 3;
export const mqttPuback = 4;
export const mqttSubscribe = 8;
export const mqttSuback = 9;
export const mqttPingreq = 12;
export const mqttPingresp = 13;
export const mqttDisconnect = 14;

export const mqttOk = 0;
/** A received packet broke the MQTT 3.1.1 grammar (bad flags, lengths, remaining-length varint). */
export const mqttErrorMalformed = -1;
/** A packet is larger than its buffer: received (receive buffer) or to send (packet bytes max). */
export const mqttErrorTooLarge = -2;
/** The broker sent a packet a client never receives, or anything before CONNACK. */
export const mqttErrorUnexpected = -3;
/** The QoS 1 in-flight window (messages or bytes) is full: publish again after an ack. */
export const mqttErrorWindowFull = -4;
/** A QoS 0 publish or a subscribe needs a live session. */
export const mqttErrorNotConnected = -5;
/** No CONNACK or PINGRESP in time: the link is dead. */
export const mqttErrorTimeout = -6;
/** The socket closed under us (or the TCP connect failed). */
export const mqttErrorConnectionLost = -7;
/** The client was stopped by its owner (a clean DISCONNECT). */
export const mqttErrorStopped = -8;
/** CONNACK refused: -10 minus the return code (1..5). */
export const mqttErrorRefusedProtocol = -11;
export const mqttErrorRefusedIdentifier = -12;
export const mqttErrorRefusedUnavailable = -13;
export const mqttErrorRefusedCredentials = -14;
export const mqttErrorRefusedNotAuthorized = -15;

/** One line for logs and test failures. */
export function mqttCodeName(code: number): string {
  if (code === mqttOk) return 'ok';
  if (code === mqttErrorMalformed) return 'malformed packet';
  if (code === mqttErrorTooLarge) return 'packet too large';
  if (code === mqttErrorUnexpected) return 'unexpected packet';
  if (code === mqttErrorWindowFull) return 'in-flight window full';
  if (code === mqttErrorNotConnected) return 'not connected';
  if (code === mqttErrorTimeout) return 'broker did not answer in time';
  if (code === mqttErrorConnectionLost) return 'connection lost';
  if (code === mqttErrorStopped) return 'stopped';
  if (code === mqttErrorRefusedProtocol) return 'refused: protocol version';
  if (code === mqttErrorRefusedIdentifier) return 'refused: client id rejected';
  if (code === mqttErrorRefusedUnavailable) return 'refused: server unavailable';
  if (code === mqttErrorRefusedCredentials) return 'refused: bad user name or password';
  if (code === mqttErrorRefusedNotAuthorized) return 'refused: not authorized';
  return 'code ' + code;
}
