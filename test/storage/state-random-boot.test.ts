// Booting from whatever the flash holds: random bytes, valid-looking headers over garbage, records
// with good CRCs but impossible contents, worn sectors. Mount never throws or hangs, bounds its
// flash reads, and the store takes writes afterwards [STORE-3] [STORE-4].
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { segmentHeaderBytes, stateErrorFlash, stateOk, stateRecordBytesMax } from '../../firmware/core/state-store.ts';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { FlashSimulator } from '../../hal-mocks/flash-simulator.ts';
import { newStore, smallTemplate, snapshot, twentyKeyTemplate } from './state-helpers.ts';

/** Counts reads, to prove mount does a bounded amount of work. */
function countingReads(flash: FlashSimulator): { reads: () => number } {
  let reads = 0;
  const read = flash.read.bind(flash);
  flash.read = (address, into, offset, length) => {
    reads++;
    return read(address, into, offset, length);
  };
  return { reads: () => reads };
}

/** Programs a committed segment header of `generation` at `sector`, as the store writes it. */
function plantHeader(flash: FlashSimulator, sector: number, generation: number): void {
  const header = new Uint8Array(16);
  header.set([0x54, 0x64, 0x53, 1]);
  new DataView(header.buffer).setUint32(4, generation, true);
  const crc = crc32(header, 0, 8);
  new DataView(header.buffer).setUint32(8, crc, true);
  new DataView(header.buffer).setUint32(12, (crc ^ 0xa5a5a5a5) >>> 0, true);
  flash.bytes.set(header, sector * flash.sectorSize);
}

/** A record with a valid CRC over arbitrary prefix/fields (key, kind byte, length, body). */
function plantRecord(flash: FlashSimulator, address: number, body: Uint8Array): number {
  const record = new Uint8Array(body.length + 4);
  record.set(body);
  new DataView(record.buffer).setUint32(body.length, crc32(record, 0, body.length), true);
  if (address + record.length > flash.bytes.length) return address;
  flash.bytes.set(record, address);
  return address + record.length;
}

function checkWritable(flash: FlashSimulator): void {
  const store = newStore(flash, twentyKeyTemplate);
  expect(store.mount()).toBe(stateOk);
  expect(store.setNumber(0, 1234)).toBe(stateOk);
  expect(store.setString(10, 'kitchen')).toBe(stateOk);
  const expected = snapshot(store);
  const again = newStore(flash, twentyKeyTemplate);
  expect(again.mount()).toBe(stateOk);
  expect(snapshot(again)).toBe(expected);
  expect(again.getNumber(0)).toBe(1234);
  expect(again.getString(10)).toBe('kitchen');
}

describe('state store boot from random flash', () => {
  it('random bytes in every sector: mounts (formats), bounded reads, then writable', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const flash = new FlashSimulator({ sectorCount: 4, sectorSize: 4096, seed });
      flash.fillRandom(seed);
      const counter = countingReads(flash);
      const store = newStore(flash, twentyKeyTemplate);
      expect(store.mount()).toBe(stateOk);
      expect(store.formatted).toBe(true);
      // Four header reads; no committed segment, so nothing else is read before formatting.
      expect(counter.reads()).toBeLessThanOrEqual(4);
      checkWritable(flash);
    }
  });

  it('committed headers over garbage and hostile records: never throws, always writable (fast-check)', () => {
    // Mostly well-formed records (right size for their kind) with arbitrary keys, versions and
    // values, so replay meets keys outside the template and values that do not fit their field.
    const wellFormed = fc
      .record({
        key: fc.integer({ min: 0, max: 8 }),
        kind: fc.integer({ min: 0, max: 3 }),
        owner: fc.boolean(),
        length: fc.integer({ min: 0, max: 14 }),
        fields: fc.uint8Array({ minLength: 8, maxLength: 8 }),
        value: fc.uint8Array({ minLength: 14, maxLength: 14 }),
      })
      .map(({ key, kind, owner, length, fields, value }) => {
        const valueLength = kind >= 2 ? 0 : length;
        const fieldBytes = kind === 0 || kind === 3 ? 4 : 8;
        return Uint8Array.from([key, kind | (owner ? 4 : 0), valueLength, ...fields.subarray(0, fieldBytes), ...value.subarray(0, valueLength)]);
      });
    const recordBody = fc.oneof(wellFormed, fc.uint8Array({ minLength: 3, maxLength: 90 }));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.array(fc.record({ sector: fc.integer({ min: 0, max: 3 }), generation: fc.integer({ min: 1, max: 0xfffffff0 }) }), { maxLength: 4 }),
        fc.array(recordBody, { maxLength: 40 }),
        fc.boolean(),
        (seed, headers, bodies, eraseFirst) => {
          const flash = new FlashSimulator({ sectorCount: 4, sectorSize: 1024, seed });
          if (!eraseFirst) flash.fillRandom(seed);
          for (const { sector, generation } of headers) {
            flash.bytes.fill(0xff, sector * 1024, sector * 1024 + 1024);
            plantHeader(flash, sector, generation);
            let address = sector * 1024 + segmentHeaderBytes;
            for (const body of bodies) address = plantRecord(flash, address, body);
          }
          const counter = countingReads(flash);
          const store = newStore(flash, smallTemplate);
          expect(store.mount()).toBe(stateOk);
          // Header reads, one read per record of at least 11 bytes, then the tail check in chunks.
          expect(counter.reads()).toBeLessThan(4 + 1024 / 11 + 1024 / stateRecordBytesMax + 4);
          for (let key = 0; key < store.keyCount; key++) {
            if (store.has(key)) expect(store.readBytes(key, new Uint8Array(64), 0)).toBeLessThanOrEqual(smallTemplate.fields[key].maxLength);
          }
          expect(store.setNumber(0, -5)).toBe(stateOk);
          // Key 1 is cloud-owned: set as the cloud would.
          expect(store.applyCloudValue(1, Uint8Array.from([1]), 0, 1, store.version(1) + 1)).toBe(stateOk);
          const again = newStore(flash, smallTemplate);
          expect(again.mount()).toBe(stateOk);
          expect(again.getNumber(0)).toBe(-5);
          expect(again.getBool(1)).toBe(true);
        },
      ),
      { numRuns: 300, seed: 20261127 },
    );
  });

  it('a planted record with a valid CRC and a known key is replayed (the parser reads what it should)', () => {
    const flash = new FlashSimulator({ sectorCount: 2, sectorSize: 1024 });
    plantHeader(flash, 1, 9);
    // key 0 (int), kind set, length 4, version 3, value 42.
    plantRecord(flash, 1024 + segmentHeaderBytes, Uint8Array.from([0, 0, 4, 3, 0, 0, 0, 42, 0, 0, 0]));
    const store = newStore(flash, smallTemplate);
    expect(store.mount()).toBe(stateOk);
    expect(store.formatted).toBe(false);
    expect(store.getNumber(0)).toBe(42);
    expect(store.version(0)).toBe(3);
    expect(store.currentGeneration).toBe(9);
  });

  it('every sector worn out: mount reports stateErrorFlash instead of throwing', () => {
    const flash = new FlashSimulator({ sectorCount: 3, sectorSize: 1024, eraseCyclesMax: 0 });
    flash.fillRandom(3);
    const store = newStore(flash, smallTemplate);
    expect(store.mount()).toBe(stateErrorFlash);
    expect(store.setNumber(0, 1)).toBe(stateErrorFlash);
    expect(store.badSectorCount()).toBe(3);
  });
});
