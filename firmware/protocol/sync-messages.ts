// The sync session's messages [SYNC-1..SYNC-16]: one MQTT payload each, its first byte naming the
// type. Uplink types are below 0x80, downlink types 0x80 and above. Layouts: SPEC.md, "Sync
// session". Firmware-grade: the device writes and reads these in preallocated buffers; the cloud
// uses the same functions. Integers are LEB128 varints unless said otherwise.
import { getU32, putU32, readVarint, writeVarint } from './bits.ts';

// Uplink: device to cloud, on t/<id>/u.
/** [SYNC-1] First message of every connection: who the device is and what it holds. */
export const syncHello = 0x01;
/** [SYNC-2] A batch frame of cached events: epoch, then the codec's frame. */
export const syncEvents = 0x02;
/** [SYNC-3] Device-owned state keys that changed since the cloud last acknowledged them. */
export const syncStateReport = 0x03;
/** [SYNC-4] Cloud-to-device messages received and applied, up to and including a sequence. */
export const syncMessageAck = 0x04;
/** [SYNC-5] Cloud-owned state values the device applied (key and version). */
export const syncStateApplied = 0x05;
/** [SYNC-6] A proxied RPC request. */
export const syncRpcCall = 0x06;

// Downlink: cloud to device, on t/<id>/d.
/** [SYNC-10] Answer to HELLO: the session is open. */
export const syncWelcome = 0x81;
/** [SYNC-11] Events of an epoch are durably committed up to and including a sequence. */
export const syncEventsAck = 0x82;
/** [SYNC-12] Cloud-owned state values newer than the device's. */
export const syncStateSet = 0x83;
/** [SYNC-13] Device-owned state versions the cloud has stored. */
export const syncStateAck = 0x84;
/** [SYNC-14] One cloud-to-device message. */
export const syncMessage = 0x85;
/** [SYNC-15] The result of a proxied RPC request. */
export const syncRpcResult = 0x86;
/** [SYNC-16] The cloud refused something the device sent. */
export const syncError = 0x8f;

/** [SYNC-1] Version of the sync session layouts, carried in HELLO. */
export const syncProtocolVersion = 1;

// [SYNC-15] RPC outcomes.
export const rpcStatusOk = 0;
/** The upstream HTTP call did not answer within the route's timeout. */
export const rpcStatusTimeout = 1;
/** The request's time to live ran out before a result reached the device. */
export const rpcStatusExpired = 2;
/** The upstream answered with an error, or its answer was too large. */
export const rpcStatusError = 3;
/** The route is not configured, or its target is not allowed. */
export const rpcStatusRefused = 4;

// [SYNC-16] Error codes the cloud reports.
/** A template hash the cloud does not know: it never decodes with a guess. */
export const syncErrorUnknownTemplate = 1;
/** A frame or message that does not decode (CRC, truncation, range). */
export const syncErrorMalformed = 2;
/** The cloud cannot take more now (ingest queue full): the device retries later. */
export const syncErrorOverloaded = 3;
/** The state template the device announced is unknown to the cloud. */
export const syncErrorUnknownStateTemplate = 4;
/** A message arrived before HELLO opened the session. */
export const syncErrorNoSession = 5;

/** A read position shared by the readers below; one per decoder, reused. */
export interface SyncCursor {
  position: number;
}

export function writeU32(bytes: Uint8Array, offset: number, value: number): number {
  putU32(bytes, offset, value);
  return offset + 4;
}

/** Reads a little-endian u32, or -1 when fewer than 4 bytes remain before `end`. */
export function readU32(bytes: Uint8Array, cursor: SyncCursor, end: number): number {
  const at = cursor.position;
  if (at + 4 > end) return -1;
  cursor.position = at + 4;
  return getU32(bytes, at);
}

/** Writes a varint; returns the next offset, or -1 when it does not fit before `end`. */
export function writeSyncVarint(bytes: Uint8Array, offset: number, end: number, value: number): number {
  if (offset < 0) return -1;
  const next = writeVarint(bytes, offset, end, value);
  return next < 0 ? -1 : next;
}

/** Reads a varint, or -1 when it is truncated or malformed. */
export function readSyncVarint(bytes: Uint8Array, cursor: SyncCursor, end: number): number {
  const value = readVarint(bytes, cursor, end);
  return value < 0 ? -1 : value;
}

/** Writes a byte string of at most 255 bytes as u8 length + bytes; -1 when it does not fit. */
export function writeShortString(bytes: Uint8Array, offset: number, end: number, text: string): number {
  if (offset < 0 || text.length > 255 || offset + 1 + text.length > end) return -1;
  bytes[offset] = text.length;
  for (let i = 0; i < text.length; i++) bytes[offset + 1 + i] = text.charCodeAt(i) & 0xff;
  return offset + 1 + text.length;
}

/** Reads a u8-length byte string, or null when truncated. */
export function readShortString(bytes: Uint8Array, cursor: SyncCursor, end: number): string | null {
  const at = cursor.position;
  if (at >= end) return null;
  const length = bytes[at];
  if (at + 1 + length > end) return null;
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(bytes[at + 1 + i]);
  cursor.position = at + 1 + length;
  return text;
}

/** Copies bytes[from, end) into a byte string (for message bodies, which are JSON text). */
export function bytesToByteString(bytes: Uint8Array, from: number, end: number): string {
  let text = '';
  for (let i = from; i < end; i++) text += String.fromCharCode(bytes[i]);
  return text;
}
