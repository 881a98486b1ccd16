// The bit-level primitives [WIRE-10..WIRE-14] and untemplated number forms [WIRE-54], by example:
// each vector is the code as SPEC.md writes it.
import { describe, expect, it } from 'vitest';
import {
  bitReaderReset, bitWriterFlush, bitWriterReset, createBitReader, createBitWriter, readExpGolomb, readRice, readVarint,
  riceParameter, unzigzag, writeExpGolomb, writeRice, writeVarint, zigzag,
} from '../../firmware/protocol/bits.ts';
import { wireErrorCode, wireErrorTruncated } from '../../firmware/protocol/wire-errors.ts';
import { encodeUntemplatedFrames } from '../../firmware/protocol/wire-objects.ts';

function bitsOf(write: (w: ReturnType<typeof createBitWriter>) => void): string {
  const bytes = new Uint8Array(32);
  const w = createBitWriter();
  bitWriterReset(w, bytes, 0, bytes.length);
  write(w);
  const bitCount = w.position * 8 + w.pendingBits;
  bitWriterFlush(w);
  return [...bytes.subarray(0, w.position)].map((b) => b.toString(2).padStart(8, '0')).join('').slice(0, bitCount);
}

function readerOf(bits: string) {
  const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  const bytes = new Uint8Array(padded.length / 8).map((_, i) => parseInt(padded.slice(i * 8, i * 8 + 8), 2));
  const r = createBitReader();
  bitReaderReset(r, bytes, 0, bytes.length);
  return r;
}

describe('bit primitives [WIRE-10][WIRE-11][WIRE-13][WIRE-14]', () => {
  it('zigzag: 0, -1, 1, -2, 2 -> 0, 1, 2, 3, 4, exact past 2^31 [WIRE-10]', () => {
    expect([0, -1, 1, -2, 2].map(zigzag)).toEqual([0, 1, 2, 3, 4]);
    for (const value of [2 ** 40 + 3, -(2 ** 40) - 7, 2 ** 31, -(2 ** 31)]) expect(unzigzag(zigzag(value))).toBe(value);
  });

  it('Exp-Golomb: 0 -> 1, 1 -> 010, 4 -> 00101, and refuses 53 leading zeros [WIRE-11]', () => {
    expect(bitsOf((w) => writeExpGolomb(w, 0))).toBe('1');
    expect(bitsOf((w) => writeExpGolomb(w, 1))).toBe('010');
    expect(bitsOf((w) => writeExpGolomb(w, 4))).toBe('00101');
    expect(readExpGolomb(readerOf(bitsOf((w) => writeExpGolomb(w, 2 ** 50 + 5))))).toBe(2 ** 50 + 5);
    expect(readExpGolomb(readerOf('0'.repeat(60) + '1'))).toBe(wireErrorCode);
    expect(readExpGolomb(readerOf('0000001'))).toBe(wireErrorTruncated); // 6 more bits needed, 1 left
  });

  it('Rice: unary quotient, zero, k low bits; 16 ones escape to Exp-Golomb [WIRE-13]', () => {
    expect(bitsOf((w) => writeRice(w, 0, 0))).toBe('0');
    expect(bitsOf((w) => writeRice(w, 3, 1))).toBe('101');
    expect(bitsOf((w) => writeRice(w, 5, 2))).toBe('1001');
    expect(bitsOf((w) => writeRice(w, 16, 0))).toBe('1'.repeat(16) + '000010001');
    for (const [value, k] of [[0, 0], [3, 1], [100, 2], [16, 0], [2 ** 40, 3], [12345, 30]]) {
      expect(readRice(readerOf(bitsOf((w) => writeRice(w, value, k))), k)).toBe(value);
    }
    expect(riceParameter(1, 1)).toBe(0);
    expect(riceParameter(3, 2)).toBe(1);
    expect(riceParameter(20, 4)).toBe(3);
  });

  it('varint: LEB128, at most 8 bytes, below 2^53 [WIRE-14]', () => {
    const bytes = new Uint8Array(10);
    expect(writeVarint(bytes, 0, 10, 300)).toBe(2);
    expect([...bytes.subarray(0, 2)]).toEqual([0xac, 0x02]);
    expect(readVarint(bytes, { position: 0 }, 2)).toBe(300);
    expect(readVarint(new Uint8Array([0x80, 0x80]), { position: 0 }, 2)).toBe(wireErrorTruncated);
    expect(readVarint(new Uint8Array(9).fill(0xff), { position: 0 }, 9)).toBe(wireErrorCode);
    expect(writeVarint(bytes, 0, 1, 300)).toBe(-1);
  });
});

describe('untemplated numbers [WIRE-54]', () => {
  const sizeOf = (value: unknown) => {
    const encoded = encodeUntemplatedFrames([value]);
    if (!encoded.ok) throw new Error(encoded.error.message);
    return encoded.frames[0].length - 8; // header (4) and CRC (4)
  };
  it('whole numbers as integers, float32 when exact, else float64', () => {
    expect(sizeOf(5)).toBe(1);
    expect(sizeOf(-20)).toBe(1);
    expect(sizeOf(300)).toBe(3);
    expect(sizeOf(1.5)).toBe(5);
    expect(sizeOf(0.1)).toBe(9);
    expect(sizeOf(2 ** 53 + 2)).toBe(9);
  });
});
