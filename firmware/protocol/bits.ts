// Bit and byte primitives of the wire codec [WIRE-10..WIRE-14]: an MSB-first bit writer and
// reader over a caller's Uint8Array, LEB128 varints, zigzag, Exp-Golomb and adaptive Rice codes.
// Firmware-grade: plain functions over small state objects (no class fields, which esbuild would
// lower into helpers), arithmetic instead of shifts wherever a value may pass 31 bits.
import { wireErrorCode, wireErrorTruncated } from './wire-errors.ts';

/** 2^24: the widest chunk the bit writer moves with 32-bit integer operations. */
const chunk = 16777216;
/** [WIRE-13] A Rice code's unary part stops at this many 1 bits; an Exp-Golomb value follows. */
export const riceEscapeOnes = 16;
/** [WIRE-13] The adaptive Rice statistics are halved when the count reaches this. */
export const riceResetCount = 16;
/** Largest value any code may carry: 2^53 - 1, the largest exact integer in a double. */
export const codeValueMax = 9007199254740991;

export interface BitWriter {
  bytes: Uint8Array;
  /** Next byte to write. */
  position: number;
  /** First byte the writer may not touch. */
  limit: number;
  /** Bits not yet written out (fewer than 8), right-aligned in `pending`. */
  pending: number;
  pendingBits: number;
  /** Set when a write did not fit; the caller rolls back to a saved position. */
  overflow: boolean;
}

export function createBitWriter(): BitWriter {
  return { bytes: new Uint8Array(0), position: 0, limit: 0, pending: 0, pendingBits: 0, overflow: false };
}

export function bitWriterReset(w: BitWriter, bytes: Uint8Array, position: number, limit: number): void {
  w.bytes = bytes;
  w.position = position;
  w.limit = limit;
  w.pending = 0;
  w.pendingBits = 0;
  w.overflow = false;
}

/** Writes the low `count` bits of `value` (0 <= count <= 24, 0 <= value < 2^count), MSB first. */
export function writeBits(w: BitWriter, value: number, count: number): void {
  if (count === 0) return;
  let acc = (w.pending << count) | value;
  let bits = w.pendingBits + count;
  while (bits >= 8) {
    bits -= 8;
    if (w.position >= w.limit) {
      w.overflow = true;
    } else {
      w.bytes[w.position] = (acc >> bits) & 0xff;
      w.position++;
    }
    acc = acc & ((1 << bits) - 1);
  }
  w.pending = acc;
  w.pendingBits = bits;
}

/** Writes `count` bits (up to 53) of a non-negative integer `value`. */
export function writeBitsWide(w: BitWriter, value: number, count: number): void {
  if (count <= 24) {
    writeBits(w, value, count);
    return;
  }
  const high = Math.floor(value / chunk);
  writeBitsWide(w, high, count - 24);
  writeBits(w, value - high * chunk, 24);
}

/** Pads the last byte with 0 bits [WIRE-12]. */
export function bitWriterFlush(w: BitWriter): void {
  if (w.pendingBits > 0) writeBits(w, 0, 8 - w.pendingBits);
}

/** Number of bits needed to write `value` (>= 1) in binary. */
export function bitLength(value: number): number {
  let bits = 1;
  let power = 2;
  while (power <= value) {
    power *= 2;
    bits++;
  }
  return bits;
}

/** [WIRE-11] Exp-Golomb order 0 of a non-negative integer: n-1 zeros, then value+1 in n bits. */
export function writeExpGolomb(w: BitWriter, value: number): void {
  const x = value + 1;
  const bits = bitLength(x);
  writeBitsWide(w, 0, bits - 1);
  writeBitsWide(w, x, bits);
}

/** [WIRE-13] The Rice parameter k for statistics (sum, count): the least k with count*2^k >= sum. */
export function riceParameter(sum: number, count: number): number {
  let k = 0;
  let reach = count;
  while (reach < sum && k < 30) {
    reach *= 2;
    k++;
  }
  return k;
}

/** [WIRE-13] Rice code of `value` with parameter k: unary quotient then k low bits, or escape. */
export function writeRice(w: BitWriter, value: number, k: number): void {
  const scale = Math.pow(2, k);
  const quotient = Math.floor(value / scale);
  if (quotient < riceEscapeOnes) {
    // quotient ones, a zero, then the k low bits: one write when it fits in 24 bits (the usual
    // case), because on Espruino every call costs far more than the arithmetic.
    const low = value - quotient * scale;
    const length = quotient + 1 + k;
    if (length <= 24) {
      writeBits(w, ((1 << quotient) - 1) * 2 * scale + low, length);
    } else {
      writeBits(w, ((1 << quotient) - 1) * 2, quotient + 1);
      writeBitsWide(w, low, k);
    }
  } else {
    writeBits(w, (1 << riceEscapeOnes) - 1, riceEscapeOnes);
    writeExpGolomb(w, value);
  }
}

/** [WIRE-10] Zigzag: 0, -1, 1, -2, 2 ... become 0, 1, 2, 3, 4 ... (arithmetic, safe past 2^31). */
export function zigzag(value: number): number {
  return value >= 0 ? value * 2 : -value * 2 - 1;
}

export function unzigzag(value: number): number {
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

export interface BitReader {
  bytes: Uint8Array;
  position: number;
  end: number;
  pending: number;
  pendingBits: number;
  /** Set when a read ran past `end`; reads then return 0. */
  overrun: boolean;
}

export function createBitReader(): BitReader {
  return { bytes: new Uint8Array(0), position: 0, end: 0, pending: 0, pendingBits: 0, overrun: false };
}

export function bitReaderReset(r: BitReader, bytes: Uint8Array, position: number, end: number): void {
  r.bytes = bytes;
  r.position = position;
  r.end = end;
  r.pending = 0;
  r.pendingBits = 0;
  r.overrun = false;
}

/** Reads `count` bits (0..24) MSB first. */
export function readBits(r: BitReader, count: number): number {
  if (count === 0) return 0;
  let acc = r.pending;
  let bits = r.pendingBits;
  while (bits < count) {
    if (r.position >= r.end) {
      r.overrun = true;
      r.pending = 0;
      r.pendingBits = 0;
      return 0;
    }
    acc = (acc << 8) | r.bytes[r.position];
    r.position++;
    bits += 8;
  }
  bits -= count;
  const value = (acc >> bits) & ((1 << count) - 1);
  r.pending = acc & ((1 << bits) - 1);
  r.pendingBits = bits;
  return value;
}

export function readBitsWide(r: BitReader, count: number): number {
  if (count <= 24) return readBits(r, count);
  const high = readBitsWide(r, count - 24);
  return high * chunk + readBits(r, 24);
}

/** Reads an Exp-Golomb value; returns wireErrorCode/-Truncated (negative) on bad input. */
export function readExpGolomb(r: BitReader): number {
  let zeros = 0;
  while (readBits(r, 1) === 0) {
    if (r.overrun) return wireErrorTruncated;
    zeros++;
    if (zeros > 52) return wireErrorCode;
  }
  const x = Math.pow(2, zeros) + readBitsWide(r, zeros);
  if (r.overrun) return wireErrorTruncated;
  return x - 1;
}

/** Reads a Rice value with parameter k; negative code on bad input. */
export function readRice(r: BitReader, k: number): number {
  let quotient = 0;
  while (quotient < riceEscapeOnes && readBits(r, 1) === 1) quotient++;
  if (r.overrun) return wireErrorTruncated;
  if (quotient === riceEscapeOnes) return readExpGolomb(r);
  let scale = 1;
  for (let i = 0; i < k; i++) scale *= 2;
  const low = readBitsWide(r, k);
  if (r.overrun) return wireErrorTruncated;
  return quotient * scale + low;
}

/** [WIRE-14] LEB128 varint of a non-negative integer at `offset`; returns the next offset, or -1 if it does not fit before `end`. */
export function writeVarint(bytes: Uint8Array, offset: number, end: number, value: number): number {
  let v = value;
  let at = offset;
  while (v >= 128) {
    if (at >= end) return -1;
    const low = v % 128;
    bytes[at] = low | 128;
    at++;
    v = (v - low) / 128;
  }
  if (at >= end) return -1;
  bytes[at] = v;
  return at + 1;
}

/** Number of bytes writeVarint uses for `value`. */
export function varintLength(value: number): number {
  let v = value;
  let length = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    length++;
  }
  return length;
}

/**
 * Reads a varint at `cursor.position` (at most 8 bytes, value below 2^53). Returns the value, or a
 * negative wire code; advances `cursor.position` on success.
 */
export function readVarint(bytes: Uint8Array, cursor: { position: number }, end: number): number {
  let value = 0;
  let scale = 1;
  let at = cursor.position;
  for (let i = 0; i < 8; i++) {
    if (at >= end) return wireErrorTruncated;
    const b = bytes[at];
    at++;
    value += (b & 127) * scale;
    if (b < 128) {
      if (value > codeValueMax) return wireErrorCode;
      cursor.position = at;
      return value;
    }
    scale *= 128;
  }
  return wireErrorCode;
}

/** Writes `value` as a little-endian u32 at `offset` (flash records, headers, sync messages). */
export function putU32(into: Uint8Array, offset: number, value: number): void {
  into[offset] = value & 0xff;
  into[offset + 1] = (value >>> 8) & 0xff;
  into[offset + 2] = (value >>> 16) & 0xff;
  into[offset + 3] = (value >>> 24) & 0xff;
}

/** Reads a little-endian u32 at `offset`. */
export function getU32(from: Uint8Array, offset: number): number {
  return (from[offset] | (from[offset + 1] << 8) | (from[offset + 2] << 16) | (from[offset + 3] << 24)) >>> 0;
}
