// The event spill tier behind the event cache: chunks and segments, acks across segments and
// reboots, the boot-epoch backlog, both overflow policies through the cache, thousands of events
// over reboots, a retired segment whose erase was torn, and segments of another template set
// [SPILL-1..7] [CACHE-2] [CACHE-3] [CACHE-4].
import { describe, expect, it } from 'vitest';
import { EventCache, eventCacheDefaults, eventErrorFull, overflowDropOldest, overflowRejectNewest } from '../../firmware/core/event-cache.ts';
import { createEventSpill, eventSpillDefaults, spillErrorFull, spillHeaderBytes, spillOk } from '../../firmware/core/event-spill.ts';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { FlashSimulator, seededRandom } from '../../hal-mocks/flash-simulator.ts';
import { eventBytes, hex, newSpill, readAll, smallOptions, snapshot } from './event-spill-helpers.ts';

function line(epoch: number, seq: number): string {
  return `e${epoch}/${seq}:${hex(eventBytes(epoch, seq))}`;
}

function storeRange(spill: ReturnType<typeof newSpill>, epoch: number, from: number, to: number): void {
  for (let seq = from; seq <= to; seq++) {
    const data = eventBytes(epoch, seq);
    expect(spill.store(seq, data, 0, data.length)).toBe(true);
  }
}

describe('event spill tier', () => {
  it('[SPILL-2] holds events in one chunk buffer until it fills, then programs whole chunks', () => {
    const flash = new FlashSimulator({ sectorSize: 4096, sectorCount: 4 });
    const spill = createEventSpill(flash, eventSpillDefaults(crc32));
    spill.mount(1);
    const data = new Uint8Array(10).fill(7);
    for (let seq = 1; seq <= 40; seq++) expect(spill.store(seq, data, 0, 10)).toBe(true);
    // 40 records of 11 bytes fit a 512-byte chunk: nothing programmed yet.
    expect(flash.bytesProgrammed).toBe(0);
    expect(spill.pendingCount()).toBe(40);
    for (let seq = 41; seq <= 100; seq++) spill.store(seq, data, 0, 10);
    // The first chunk went out as one program after the segment header.
    expect(spill.chunksWritten).toBe(2);
    expect(spill.count()).toBe(100);
    expect(spill.oldestSeq()).toBe(1);
    expect(spill.newestSeq()).toBe(100);
    // The timer flushes what is left once the first buffered event is flushDelayMs old.
    expect(spill.tick(0)).toBe(spillOk);
    expect(spill.pendingCount()).toBeGreaterThan(0);
    expect(spill.tick(eventSpillDefaults(crc32).flushDelayMs)).toBe(spillOk);
    expect(spill.pendingCount()).toBe(0);
    const again = createEventSpill(flash, eventSpillDefaults(crc32));
    expect(again.mount(2)).toBe(100);
    expect(again.backlogEpoch()).toBe(1);
    expect(again.backlogOldestSeq()).toBe(1);
    expect(again.count()).toBe(0);
  });

  it('[SPILL-1] [CACHE-2] a segment is erased once every event in it is acknowledged, and acks survive a reboot', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 8 });
    const spill = newSpill(flash);
    spill.mount(1);
    storeRange(spill, 1, 1, 120);
    expect(spill.flush()).toBe(spillOk);
    const erasesBefore = flash.bytesErased;
    // Partial ack in the middle of a segment: recorded, nothing erased past the oldest segments.
    expect(spill.ack(7)).toBe(7);
    expect(spill.oldestSeq()).toBe(8);
    expect(spill.ack(60)).toBe(53);
    expect(flash.bytesErased).toBeGreaterThan(erasesBefore);
    expect(spill.segmentsErased).toBeGreaterThan(0);
    expect(spill.ack(60)).toBe(0);
    const again = newSpill(flash);
    expect(again.mount(2)).toBe(60);
    expect(again.backlogOldestSeq()).toBe(61);
    expect(snapshot(again)).toEqual(Array.from({ length: 60 }, (_, i) => line(1, 61 + i)));
    // Backlog acks work the same way and persist.
    expect(again.ackBacklog(1, 100)).toBe(40);
    expect(again.ackBacklog(2, 200)).toBe(0);
    const third = newSpill(flash);
    expect(third.mount(3)).toBe(20);
    expect(snapshot(third)[0]).toBe(line(1, 101));
    expect(third.ackBacklog(1, 120)).toBe(20);
    expect(third.backlogEpoch()).toBe(0);
    expect(newSpill(flash).mount(4)).toBe(0);
  });

  it('[SPILL-3] acks once per sync batch are all persisted, across segment boundaries', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 8 });
    const spill = newSpill(flash);
    spill.mount(1);
    storeRange(spill, 1, 1, 150);
    spill.flush();
    for (let seq = 7; seq <= 100; seq += 7) spill.ack(seq);
    spill.ack(100);
    expect(spill.acksNotPersisted).toBe(0);
    const again = newSpill(flash);
    expect(again.mount(2)).toBe(50);
    expect(snapshot(again)).toEqual(Array.from({ length: 50 }, (_, i) => line(1, 101 + i)));
  });

  it('[SPILL-3] acks one event at a time: slots run out, the unpersisted ack is counted and only replays', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 8 });
    const spill = newSpill(flash);
    spill.mount(1);
    storeRange(spill, 1, 1, 150);
    spill.flush();
    for (let seq = 1; seq <= 100; seq++) spill.ack(seq);
    expect(spill.count()).toBe(50);
    const again = newSpill(flash);
    const found = again.mount(2);
    // What comes back is a run ending at 150, starting at or before 101: acknowledged events may
    // replay (the cloud dedupes them) only when an ack found no slot, and that was counted.
    expect(found).toBeGreaterThanOrEqual(50);
    expect(snapshot(again)).toEqual(Array.from({ length: found }, (_, i) => line(1, 151 - found + i)));
    if (found > 50) expect(spill.acksNotPersisted).toBeGreaterThan(0);
  });

  it('[SPILL-6] events keep their boot epoch: the backlog is read and acknowledged apart from the current epoch', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 12 });
    const first = newSpill(flash);
    first.mount(5);
    storeRange(first, 5, 1, 30);
    first.flush();
    const second = newSpill(flash);
    second.mount(6);
    storeRange(second, 6, 1, 20);
    second.flush();
    const third = newSpill(flash);
    third.mount(7);
    storeRange(third, 7, 1, 10);
    expect(third.backlogEpoch()).toBe(5);
    expect(third.backlogCount()).toBe(30);
    expect(third.count()).toBe(10);
    // Held in all: both earlier boots and this one's chunk buffer; 4 of 12 segments in use (the
    // first boot's 30 events take two 1 KiB segments).
    expect(third.heldCount()).toBe(60);
    expect(third.fillPercent()).toBe(33);
    expect(third.oldestSeq()).toBe(1);
    expect(readAll((a, i, o, m, b) => third.readBacklog(a, i, o, m, b))).toEqual(Array.from({ length: 30 }, (_, i) => line(5, i + 1).slice(3)));
    expect(third.ackBacklog(5, 30)).toBe(30);
    expect(third.backlogEpoch()).toBe(6);
    // Acking the current epoch leaves the backlog alone.
    expect(third.ack(10)).toBe(10);
    expect(third.backlogCount()).toBe(20);
    const fourth = newSpill(flash);
    expect(fourth.mount(8)).toBe(20);
    expect(fourth.backlogEpoch()).toBe(6);
    // Once the last earlier boot is acknowledged nothing is held.
    expect(fourth.ackBacklog(6, 20)).toBe(20);
    expect(fourth.backlogEpoch()).toBe(0);
    expect(fourth.heldCount()).toBe(0);
  });

  it('overflow, drop-oldest: the oldest segment goes and its events are counted', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 3 });
    const spill = newSpill(flash);
    spill.mount(1);
    let dropped = 0;
    for (let seq = 1; seq <= 300; seq++) {
      const data = eventBytes(1, seq);
      expect(spill.store(seq, data, 0, data.length)).toBe(true);
      dropped += spill.takeDropped();
    }
    expect(dropped).toBeGreaterThan(0);
    expect(spill.count() + dropped).toBe(300);
    expect(spill.newestSeq()).toBe(300);
    expect(spill.oldestSeq()).toBe(dropped + 1);
  });

  it('overflow, reject-newest: the tier refuses and keeps what it has', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 3 });
    const spill = newSpill(flash, smallOptions({ overflowPolicy: overflowRejectNewest }));
    spill.mount(1);
    let seq = 1;
    for (; seq <= 300; seq++) {
      const data = eventBytes(1, seq);
      if (!spill.store(seq, data, 0, data.length)) break;
    }
    expect(seq).toBeLessThan(300);
    expect(spill.takeDropped()).toBe(0);
    expect(spill.flush()).toBe(spillErrorFull);
    expect(spill.oldestSeq()).toBe(1);
    // After an ack frees segments, it takes events again.
    spill.ack(seq - 20);
    const data = eventBytes(1, seq);
    expect(spill.store(seq, data, 0, data.length)).toBe(true);
  });

  it('[SPILL-4] a retired segment whose erase wiped its ack slots but not its events stays gone', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 6 });
    const writer = newSpill(flash);
    writer.mount(1);
    storeRange(writer, 1, 1, 10);
    writer.flush();
    // After a reboot the backlog segment is closed: acknowledging all of it writes the ack
    // record, retires the segment and erases it. Cut the power just before the erase.
    const spill = newSpill(flash);
    expect(spill.mount(2)).toBe(10);
    const before = flash.operations;
    flash.cutPowerAfter(2);
    expect(() => spill.ackBacklog(1, 10)).toThrow();
    expect(flash.operations - before).toBe(3);
    flash.restorePower();
    // An erase that reached the ack slots but not the header or the data (real NOR tears anywhere).
    flash.bytes.fill(0xff, spillHeaderBytes, spillHeaderBytes + 4 * 8);
    expect(newSpill(flash).mount(3)).toBe(0);
  });

  it('the segment being appended to stays open when emptied by an ack, and is erased once it is full', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 6 });
    const spill = newSpill(flash);
    spill.mount(1);
    let seq = 1;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 5; i++, seq++) {
        const data = eventBytes(1, seq);
        spill.store(seq, data, 0, data.length);
      }
      spill.flush();
      spill.ack(seq - 1);
    }
    // 200 events of about 32 bytes fill about 7 segments: one erase per segment filled, not per ack.
    expect(spill.segmentsErased).toBeLessThan(12);
    expect(spill.segmentsOpened - spill.segmentsErased).toBe(1);
    expect(newSpill(flash).mount(2)).toBe(0);
  });

  it('a failing sector is skipped and the events go to the next one', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 4 });
    flash.wearOut(0, 0);
    // Not erased, so the tier must erase it, and the erase fails.
    flash.bytes[100] = 0;
    const spill = newSpill(flash);
    spill.mount(1);
    storeRange(spill, 1, 1, 40);
    expect(spill.flush()).toBe(spillOk);
    expect(spill.badSectorCount()).toBe(1);
    const again = newSpill(flash);
    expect(again.mount(2)).toBe(40);
  });

  it('[SPILL-7] events cached under another template set are dropped at mount, counted once, never read', () => {
    const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 8 });
    const v1 = smallOptions({ templatesCrc: 0x11111111 });
    const v2 = smallOptions({ templatesCrc: 0x22222222 });
    const writer = newSpill(flash, v1);
    writer.mount(1);
    storeRange(writer, 1, 1, 60);
    writer.flush();
    writer.ack(10);
    // The same firmware finds all 50 unacknowledged events after a reboot.
    const same = newSpill(flash, v1);
    expect(same.mount(2)).toBe(50);
    expect(same.eventsForeign).toBe(0);
    expect(same.takeDropped()).toBe(0);
    storeRange(same, 2, 1, 5);
    same.flush();
    // A firmware with other templates: neither epoch's events come back; all 55 are drops to report.
    const updated = newSpill(flash, v2);
    expect(updated.mount(3)).toBe(0);
    expect(updated.eventsForeign).toBe(55);
    expect(updated.backlogEpoch()).toBe(0);
    expect(snapshot(updated)).toEqual([]);
    expect(updated.takeDropped()).toBe(55);
    // Its own events are kept as usual; the dropped segments were retired, so no boot (under
    // either template set) sends or counts them again.
    storeRange(updated, 3, 1, 7);
    updated.flush();
    const later = newSpill(flash, v2);
    expect(later.mount(4)).toBe(7);
    expect(later.takeDropped()).toBe(0);
    expect(snapshot(later)).toEqual(Array.from({ length: 7 }, (_, i) => line(3, i + 1)));
    const back = newSpill(flash, v1);
    expect(back.mount(5)).toBe(0);
    expect(back.takeDropped()).toBe(7);
  });

  it('[CACHE-4] behind the event cache: spills the oldest, reads the tier first, acks through both, counts drops', () => {
    const flash = new FlashSimulator({ sectorSize: 4096, sectorCount: 16 });
    const spill = createEventSpill(flash, eventSpillDefaults(crc32));
    spill.mount(1);
    const cache = new EventCache({ ...eventCacheDefaults(), capacityBytes: 512 });
    cache.attachSpillTier(spill);
    for (let seq = 1; seq <= 1000; seq++) {
      const data = eventBytes(1, seq);
      expect(cache.append(data, 0, data.length)).toBe(seq);
    }
    expect(cache.droppedCount).toBe(0);
    expect(cache.totalCount()).toBe(1000);
    expect(spill.count()).toBeGreaterThan(900);
    const read = readAll((after, into, offset, max, batch) => {
      const bytes = cache.readBatch(after, into, offset, max);
      Object.assign(batch, cache.batch);
      return bytes;
    });
    expect(read).toEqual(Array.from({ length: 1000 }, (_, i) => line(1, i + 1).slice(3)));
    expect(cache.ack(600)).toBe(600);
    expect(cache.oldestSeq()).toBe(601);
    expect(cache.ack(1000)).toBe(400);
    expect(cache.totalCount()).toBe(0);
    expect(newSpill(flash, eventSpillDefaults(crc32)).mount(2)).toBe(0);
  });

  it('[CACHE-3] behind the event cache, both policies: every event kept, dropped or refused is accounted for', () => {
    for (const policy of [overflowDropOldest, overflowRejectNewest]) {
      const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 3 });
      const spill = newSpill(flash, smallOptions({ overflowPolicy: policy }));
      spill.mount(1);
      const cache = new EventCache({ ...eventCacheDefaults(), capacityBytes: 256, overflowPolicy: policy });
      cache.attachSpillTier(spill);
      let refused = 0;
      let stored = 0;
      for (let i = 1; i <= 500; i++) {
        const data = eventBytes(1, i);
        const seq = cache.append(data, 0, data.length);
        if (seq === eventErrorFull) refused++;
        else stored++;
      }
      if (policy === overflowRejectNewest) {
        expect(refused).toBeGreaterThan(0);
        expect(cache.totalCount()).toBe(stored);
        expect(cache.oldestSeq()).toBe(1);
      } else {
        expect(refused).toBe(0);
        expect(cache.totalCount() + cache.droppedCount).toBe(500);
        expect(cache.newestSeq()).toBe(500);
      }
    }
  });

  it('[CACHE-3] a drop the tier makes in a timed flush reaches the cache\'s count once collected', () => {
    // Find a workload whose last events wait in the chunk buffer of a full area, so that the
    // timed flush (not a store) opens a segment and drops the oldest.
    let found = false;
    for (let events = 40; events < 400 && !found; events++) {
      const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 3 });
      const spill = newSpill(flash, smallOptions({ flushDelayMs: 100 }));
      spill.mount(1);
      const cache = new EventCache({ ...eventCacheDefaults(), capacityBytes: 256 });
      cache.attachSpillTier(spill);
      for (let seq = 1; seq <= events; seq++) {
        const data = eventBytes(1, seq);
        cache.append(data, 0, data.length);
        cache.spillNow(cache.count);
      }
      const before = cache.droppedCount;
      const held = cache.totalCount();
      expect(held + before).toBe(events);
      spill.tick(0);
      expect(spill.tick(1000)).toBe(spillOk);
      if (cache.totalCount() === held) continue;
      found = true;
      // The flush dropped the oldest segment; the cache learns of it when it collects.
      expect(cache.droppedCount).toBe(before);
      cache.collectSpillDrops();
      expect(cache.droppedCount - before).toBe(held - cache.totalCount());
      expect(cache.totalCount() + cache.droppedCount).toBe(events);
    }
    expect(found).toBe(true);
  });

  it('reboots with thousands of events queued: 256 KiB area, 6,000 events over 4 boots, acks in between', () => {
    const flash = new FlashSimulator({ sectorSize: 4096, sectorCount: 64 });
    const expected = new Map<number, number[]>();
    const random = seededRandom(44);
    for (let epoch = 1; epoch <= 4; epoch++) {
      const spill = createEventSpill(flash, eventSpillDefaults(crc32));
      const queued = [...expected.values()].reduce((sum, seqs) => sum + seqs.length, 0);
      expect(spill.mount(epoch)).toBe(queued);
      // Drain part of the oldest backlog epoch, as a sync would.
      const backlog = spill.backlogEpoch();
      if (backlog !== 0) {
        const seqs = expected.get(backlog)!;
        const upTo = seqs[Math.floor(random() * seqs.length)];
        expect(spill.ackBacklog(backlog, upTo)).toBe(seqs.filter((seq) => seq <= upTo).length);
        expected.set(backlog, seqs.filter((seq) => seq > upTo));
      }
      const seqs: number[] = [];
      for (let seq = 1; seq <= 1500; seq++) {
        const data = eventBytes(epoch, seq);
        expect(spill.store(seq, data, 0, data.length)).toBe(true);
        seqs.push(seq);
      }
      expect(spill.takeDropped()).toBe(0);
      spill.ack(200);
      expected.set(epoch, seqs.filter((seq) => seq > 200));
      expect(spill.flush()).toBe(spillOk);
    }
    const last = createEventSpill(flash, eventSpillDefaults(crc32));
    const total = [...expected.values()].reduce((sum, seqs) => sum + seqs.length, 0);
    expect(total).toBeGreaterThan(4000);
    expect(last.mount(5)).toBe(total);
    // Every epoch's events come back in order, under their own epoch.
    for (let guard = 0; guard < 10 && last.backlogEpoch() !== 0; guard++) {
      const epoch = last.backlogEpoch();
      const events = readAll((a, i, o, m, b) => last.readBacklog(a, i, o, m, b));
      expect(events).toEqual(expected.get(epoch)!.map((seq) => line(epoch, seq).slice(String(epoch).length + 2)));
      const newest = expected.get(epoch)![expected.get(epoch)!.length - 1];
      expect(last.ackBacklog(epoch, newest)).toBe(events.length);
      expected.delete(epoch);
    }
    expect(expected.size).toBe(0);
    expect(createEventSpill(flash, eventSpillDefaults(crc32)).mount(6)).toBe(0);
  });
});
