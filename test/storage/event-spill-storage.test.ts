// The event spill tier on Espruino Storage semantics (StorageFlash over the sandbox's
// EspruinoStorage, which models Storage's files, trash and compaction byte for byte): thousands of
// events over reboots, and a power cut at every Storage flash operation of a seeded workload
// [SPILL-1..5] [FLASH-1].
import { describe, expect, it } from 'vitest';
import type { EventSpillOptions } from '../../firmware/core/event-spill.ts';
import { StorageFlash, storageSectorSizeFor } from '../../firmware/hal/espruino/storage-flash.ts';
import { EspruinoStorage, PowerLossError } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { seededRandom } from '../../hal-mocks/flash-simulator.ts';
import { eventBytes, hex, newSpill, readAll, smallOptions } from './event-spill-helpers.ts';

/** Every event on the Storage image, all epochs, read on a copy (acks there do not touch `image`). */
function imageSnapshot(image: Uint8Array, pageBytes: number, pageCount: number, sectorSize: number, sectorCount: number, options: EventSpillOptions): string[] {
  const storage = new EspruinoStorage({ pageBytes, pageCount, image });
  const spill = newSpill(new StorageFlash(storage, 'ev', sectorSize, sectorCount), options);
  spill.mount(999);
  const out: string[] = [];
  for (let guard = 0; guard < 100 && spill.backlogEpoch() !== 0; guard++) {
    const epoch = spill.backlogEpoch();
    const events = readAll((a, i, o, m, b) => spill.readBacklog(a, i, o, m, b));
    for (const event of events) out.push(`e${epoch}/${event}`);
    spill.ackBacklog(epoch, Number(events[events.length - 1].split(':')[0]));
  }
  return out;
}

describe('event spill on Espruino Storage (StorageFlash)', () => {
  it('3,000 events over 3 reboots with acks: every unacknowledged event comes back under its epoch', () => {
    const pageBytes = 4096;
    const pageCount = 56;
    const sectorSize = storageSectorSizeFor(pageBytes);
    const sectorCount = 40;
    let image: Uint8Array | undefined;
    const expected: string[] = [];
    for (let epoch = 1; epoch <= 3; epoch++) {
      const storage = new EspruinoStorage({ pageBytes, pageCount, image });
      const spill = newSpill(new StorageFlash(storage, 'ev', sectorSize, sectorCount), smallOptions({ chunkBytes: 512, ackSlots: 16, recordBytesMax: 512 }));
      expect(spill.mount(epoch)).toBe(expected.length);
      for (let seq = 1; seq <= 1000; seq++) {
        const data = eventBytes(epoch, seq);
        expect(spill.store(seq, data, 0, data.length)).toBe(true);
      }
      spill.ack(100);
      expect(spill.flush()).toBe(0);
      expect(spill.takeDropped()).toBe(0);
      for (let seq = 101; seq <= 1000; seq++) expected.push(`e${epoch}/${seq}:${hex(eventBytes(epoch, seq))}`);
      image = storage.imageBytes();
    }
    expect(imageSnapshot(image!, pageBytes, pageCount, sectorSize, sectorCount, smallOptions({ chunkBytes: 512, ackSlots: 16, recordBytesMax: 512 }))).toEqual(expected);
  });

  describe('power cut at every Storage flash operation', () => {
    const pageBytes = 1024;
    const pageCount = 10;
    const sectorSize = storageSectorSizeFor(pageBytes);
    const sectorCount = 5;
    const options = smallOptions();
    type Operation = { kind: 'store'; seq: number } | { kind: 'flush' } | { kind: 'ack'; seq: number };

    // A seeded workload and, after each operation, the events that must be durable (reference:
    // stored seqs the tier no longer reports pending, minus acks and counted drops).
    const random = seededRandom(17);
    const operations: Operation[] = [];
    const durable: string[][] = [[]];
    {
      const storage = new EspruinoStorage({ pageBytes, pageCount });
      const spill = newSpill(new StorageFlash(storage, 'ev', sectorSize, sectorCount), options);
      spill.mount(1);
      let seq = 1;
      let model: number[] = [];
      let flushedThrough = 0;
      let ackedThrough = 0;
      for (let i = 0; i < 400; i++) {
        const choice = random();
        const operation: Operation = choice < 0.8 ? { kind: 'store', seq: seq++ } : choice < 0.88 ? { kind: 'flush' } : { kind: 'ack', seq: Math.max(ackedThrough, spill.oldestSeq() + Math.floor(random() * 8)) };
        apply(spill, operation);
        model = model.slice(spill.takeDropped());
        if (operation.kind === 'ack' && operation.seq > ackedThrough) ackedThrough = operation.seq;
        const newestFlushed = seq - 1 - spill.pendingCount();
        for (let s = flushedThrough + 1; s <= newestFlushed; s++) if (s > ackedThrough) model.push(s);
        flushedThrough = Math.max(flushedThrough, newestFlushed);
        model = model.filter((s) => s > ackedThrough);
        operations.push(operation);
        durable.push(model.map((s) => `e1/${s}:${hex(eventBytes(1, s))}`));
      }
      expect(imageSnapshot(storage.imageBytes(), pageBytes, pageCount, sectorSize, sectorCount, options)).toEqual(durable[durable.length - 1]);
    }

    function apply(spill: ReturnType<typeof newSpill>, operation: Operation): void {
      if (operation.kind === 'store') {
        const data = eventBytes(1, operation.seq);
        spill.store(operation.seq, data, 0, data.length);
      } else if (operation.kind === 'flush') spill.flush();
      else spill.ack(operation.seq);
    }

    function run(storage: EspruinoStorage): number {
      let inFlight = 0;
      try {
        const spill = newSpill(new StorageFlash(storage, 'ev', sectorSize, sectorCount), options);
        spill.mount(1);
        for (inFlight = 0; inFlight < operations.length; inFlight++) {
          apply(spill, operations[inFlight]);
          if (storage.isPoweredOff) return inFlight;
        }
        return operations.length;
      } catch (error) {
        if (!(error instanceof PowerLossError)) throw error;
        return inFlight;
      }
    }

    const clean = new EspruinoStorage({ pageBytes, pageCount });
    expect(run(clean)).toBe(operations.length);
    const storageOperations = clean.flashOperationCount;

    it(`acknowledged events gone, durable ones there once, unless Storage compaction wiped Storage (${storageOperations} cut points)`, () => {
      const failures: string[] = [];
      let compactionLosses = 0;
      let compactionCuts = 0;
      for (let at = 0; at < storageOperations; at++) {
        const storage = new EspruinoStorage({ pageBytes, pageCount });
        storage.cutPowerAfter(at);
        const inFlight = Math.min(run(storage), operations.length - 1);
        const duringCompaction = storage.poweredOffInCompaction;
        if (duringCompaction) compactionCuts++;
        const image = storage.imageBytes();
        const wiped = new EspruinoStorage({ pageBytes, pageCount, image }).list().length === 0;
        const found = imageSnapshot(image, pageBytes, pageCount, sectorSize, sectorCount, options);
        const before = new Set(durable[inFlight]);
        const after = new Set(durable[inFlight + 1]);
        const foundSet = new Set(found);
        const problems: string[] = [];
        if (foundSet.size !== found.length) problems.push('an event twice');
        for (const event of found) if (!before.has(event) && !after.has(event)) problems.push(`unexpected ${event.slice(0, 20)}`);
        for (const event of before) if (after.has(event) && !foundSet.has(event)) problems.push(`lost ${event.slice(0, 20)}`);
        if (problems.length > 0) {
          // As for the state store: Storage's own compaction, cut between erasing and rewriting
          // its first page, wipes every file; nothing built on Storage can prevent that.
          if (duringCompaction && wiped) compactionLosses++;
          else failures.push(`cut at ${at} (operation ${inFlight}): ${problems.slice(0, 3).join('; ')}`);
        }
      }
      expect(failures).toEqual([]);
      expect(compactionCuts, 'Storage compacts during the run').toBeGreaterThan(0);
      expect(compactionLosses).toBeLessThan(storageOperations / 10);
    });
  });
});
