// The event ring: wrap-around, both overflow policies, ack semantics, drop counting, the spill
// tier hook, and property tests against a plain array model [CACHE-1..4].
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EventCache, eventCacheDefaults, eventEntryHeaderBytes, eventErrorFull, eventErrorTooLarge, overflowDropOldest, overflowRejectNewest,
  type EventBatch, type EventSpillTier,
} from '../../firmware/core/event-cache.ts';
import { eventCacheBytesMax, eventRecordBytesMax } from '../../firmware/protocol/limits.ts';

function event(length: number, fill: number): Uint8Array {
  return new Uint8Array(length).fill(fill & 0xff);
}

/** Parses a batch (u16 length + bytes per event) back into events. */
function parseBatch(buffer: Uint8Array, offset: number, bytes: number): Uint8Array[] {
  const events: Uint8Array[] = [];
  let at = offset;
  while (at < offset + bytes) {
    const length = buffer[at] | (buffer[at + 1] << 8);
    events.push(buffer.slice(at + 2, at + 2 + length));
    at += 2 + length;
  }
  expect(at).toBe(offset + bytes);
  return events;
}

function cache(capacityBytes: number, overflowPolicy = overflowDropOldest): EventCache {
  return new EventCache({ capacityBytes, overflowPolicy, firstSeq: 1 });
}

describe('event cache', () => {
  it('defaults to eventCacheBytesMax and drop-oldest', () => {
    const defaults = eventCacheDefaults();
    expect(defaults.capacityBytes).toBe(eventCacheBytesMax);
    expect(new EventCache(defaults).overflowPolicy).toBe(overflowDropOldest);
  });

  it('stores events longer than 255 bytes (two length bytes)', () => {
    const ring = cache(2048);
    const long = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    expect(ring.append(long, 0, 300)).toBe(1);
    const out = new Uint8Array(400);
    expect(parseBatch(out, 0, ring.readBatch(0, out, 0, 400))).toEqual([long]);
  });

  it('numbers events 1, 2, 3 ... and reads them back oldest first', () => {
    const ring = cache(256);
    expect(ring.append(event(3, 1), 0, 3)).toBe(1);
    expect(ring.append(event(5, 2), 0, 5)).toBe(2);
    // An event taken from the middle of a larger buffer.
    expect(ring.append(Uint8Array.from([9, 8, 7, 6]), 1, 2)).toBe(3);
    const out = new Uint8Array(64);
    const bytes = ring.readBatch(0, out, 4, 60);
    expect(ring.batch).toEqual({ firstSeq: 1, count: 3, bytes: 2 * 3 + 3 + 5 + 2 });
    expect(parseBatch(out, 4, bytes).map((e) => Array.from(e))).toEqual([[1, 1, 1], [2, 2, 2, 2, 2], [8, 7]]);
    expect(ring.oldestSeq()).toBe(1);
    expect(ring.newestSeq()).toBe(3);
  });

  it('reads only whole events that fit, and continues after a given seq', () => {
    const ring = cache(256);
    for (let i = 1; i <= 5; i++) ring.append(event(10, i), 0, 10);
    const out = new Uint8Array(100);
    expect(ring.readBatch(0, out, 0, 35)).toBe(24);
    expect(ring.batch.count).toBe(2);
    expect(ring.readBatch(2, out, 0, 100)).toBe(36);
    expect(ring.batch.firstSeq).toBe(3);
    expect(ring.readBatch(5, out, 0, 100)).toBe(0);
    expect(ring.batch).toEqual({ firstSeq: 0, count: 0, bytes: 0 });
  });

  it('wraps around the end of the buffer, events split in two included', () => {
    const ring = cache(64);
    const out = new Uint8Array(64);
    for (let round = 0; round < 50; round++) {
      const length = 1 + (round % 13);
      const seq = ring.append(event(length, round), 0, length);
      expect(seq).toBe(round + 1);
      const bytes = ring.readBatch(seq - 1, out, 0, 64);
      expect(parseBatch(out, 0, bytes).map((e) => Array.from(e))).toEqual([Array.from(event(length, round))]);
      expect(ring.ack(seq)).toBe(1);
      expect(ring.count).toBe(0);
      expect(ring.bytesUsed).toBe(0);
    }
  });

  it('ack purges up to and including seq; old and future acks are harmless', () => {
    const ring = cache(256);
    for (let i = 0; i < 6; i++) ring.append(event(4, i), 0, 4);
    expect(ring.ack(0)).toBe(0);
    expect(ring.ack(3)).toBe(3);
    expect(ring.oldestSeq()).toBe(4);
    expect(ring.ack(3)).toBe(0);
    expect(ring.ack(2)).toBe(0);
    expect(ring.ack(1000)).toBe(3);
    expect(ring.count).toBe(0);
    expect(ring.oldestSeq()).toBe(0);
    expect(ring.append(event(4, 9), 0, 4)).toBe(7);
  });

  it('drop-oldest: a full ring drops the oldest events and counts each drop', () => {
    const ring = cache(10 * (eventEntryHeaderBytes + 4) + 1);
    for (let i = 0; i < 15; i++) expect(ring.append(event(4, i), 0, 4)).toBe(i + 1);
    expect(ring.count).toBe(10);
    expect(ring.droppedCount).toBe(5);
    expect(ring.oldestSeq()).toBe(6);
    const out = new Uint8Array(200);
    const events = parseBatch(out, 0, ring.readBatch(0, out, 0, 200));
    expect(events.map((e) => e[0])).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  });

  it('reject-newest: a full ring refuses new events, counts them, and gives them no seq', () => {
    const ring = cache(3 * (eventEntryHeaderBytes + 4) + 1, overflowRejectNewest);
    for (let i = 0; i < 3; i++) expect(ring.append(event(4, i), 0, 4)).toBe(i + 1);
    expect(ring.append(event(4, 3), 0, 4)).toBe(eventErrorFull);
    expect(ring.append(event(4, 4), 0, 4)).toBe(eventErrorFull);
    expect(ring.droppedCount).toBe(2);
    expect(ring.ack(1)).toBe(1);
    expect(ring.append(event(4, 5), 0, 4)).toBe(4);
  });

  it('refuses an event larger than the limit or the ring, and counts it', () => {
    // One byte of the ring always stays free: 64 bytes hold one 61-byte event with its header.
    const ring = cache(64);
    expect(ring.append(event(62, 0), 0, 62)).toBe(eventErrorTooLarge);
    expect(new EventCache({ ...eventCacheDefaults(), capacityBytes: 4096 }).append(event(eventRecordBytesMax + 1, 0), 0, eventRecordBytesMax + 1)).toBe(eventErrorTooLarge);
    expect(ring.droppedCount).toBe(1);
    expect(ring.append(event(4, 0), 0, -1)).toBe(eventErrorTooLarge);
    expect(ring.droppedCount).toBe(2);
    expect(ring.append(event(61, 0), 0, 61)).toBe(1);
  });

  it('keeps the drop count until it is reported; drops after the report stay counted', () => {
    const ring = cache(2 * (eventEntryHeaderBytes + 1) + 1);
    for (let i = 0; i < 5; i++) ring.append(event(1, i), 0, 1);
    expect(ring.droppedCount).toBe(3);
    const reported = ring.droppedCount;
    ring.append(event(1, 9), 0, 1);
    ring.clearDropped(reported);
    expect(ring.droppedCount).toBe(1);
    expect(ring.takeDropped()).toBe(1);
    expect(ring.droppedCount).toBe(0);
  });

  it('appends into its one preallocated buffer: no heap growth per event on the fast path', () => {
    const ring = cache(64 * 1024);
    const record = event(20, 7);
    const churn = () => {
      for (let i = 0; i < 200_000; i++) {
        ring.append(record, 0, 20);
        if (ring.count === 2000) ring.ack(ring.nextSeq);
      }
    };
    churn();
    const before = process.memoryUsage().heapUsed;
    churn();
    // 200k events kept as objects would take tens of MB; the ring allocates nothing at all here.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(1_000_000);
    expect(ring.bytesUsed).toBeLessThan(64 * 1024);
  });
});

/** A flash tier stand-in: an array with a capacity, applying drop-oldest to itself (or failing). */
class ArraySpill implements EventSpillTier {
  events: { seq: number; bytes: Uint8Array }[] = [];
  dropped = 0;
  failing = false;
  constructor(readonly capacity: number) {}
  store(seq: number, data: Uint8Array, offset: number, length: number): boolean {
    if (this.failing) return false;
    if (this.events.length >= this.capacity) {
      this.events.shift();
      this.dropped++;
    }
    this.events.push({ seq, bytes: data.slice(offset, offset + length) });
    return true;
  }
  takeDropped(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }
  count(): number {
    return this.events.length;
  }
  oldestSeq(): number {
    return this.events.length > 0 ? this.events[0].seq : 0;
  }
  newestSeq(): number {
    return this.events.length > 0 ? this.events[this.events.length - 1].seq : 0;
  }
  readBatch(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number {
    let written = 0;
    for (const { seq, bytes } of this.events) {
      if (seq <= afterSeq) continue;
      if (written + 2 + bytes.length > maxBytes) break;
      into[offset + written] = bytes.length & 0xff;
      into[offset + written + 1] = bytes.length >> 8;
      into.set(bytes, offset + written + 2);
      written += 2 + bytes.length;
      if (batch.count === 0) batch.firstSeq = seq;
      batch.count++;
    }
    return written;
  }
  ack(seq: number): number {
    const before = this.events.length;
    this.events = this.events.filter((e) => e.seq > seq);
    return before - this.events.length;
  }
}

describe('event cache spill tier hook [CACHE-4]', () => {
  it('spills the oldest events instead of dropping them, and reads and acks across both tiers', () => {
    const ring = cache(4 * (eventEntryHeaderBytes + 3) + 1);
    const spill = new ArraySpill(5);
    ring.attachSpillTier(spill);
    for (let i = 1; i <= 9; i++) expect(ring.append(event(3, i), 0, 3)).toBe(i);
    expect(ring.droppedCount).toBe(0);
    expect(spill.count()).toBe(5);
    expect(ring.totalCount()).toBe(9);
    expect(ring.oldestSeq()).toBe(1);
    const out = new Uint8Array(100);
    const events = parseBatch(out, 0, ring.readBatch(0, out, 0, 100));
    expect(events.map((e) => e[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ring.batch.firstSeq).toBe(1);
    expect(ring.batch.count).toBe(9);
    // A small batch stops inside the flash tier.
    expect(parseBatch(out, 0, ring.readBatch(0, out, 0, 12)).map((e) => e[0])).toEqual([1, 2]);
    expect(ring.ack(6)).toBe(6);
    expect(spill.count()).toBe(0);
    expect(ring.oldestSeq()).toBe(7);
    // The tier fills up and drops its own oldest: every drop is counted, from the oldest end.
    for (let i = 10; i <= 20; i++) ring.append(event(3, i), 0, 3);
    // 14 events, room for 9 (4 in the ring, 5 in the tier): 7..11 dropped.
    expect(spill.count()).toBe(5);
    expect(ring.droppedCount).toBe(5);
    expect(ring.oldestSeq()).toBe(12);
    expect(parseBatch(out, 0, ring.readBatch(0, out, 0, 100)).map((e) => e[0])).toEqual([12, 13, 14, 15, 16, 17, 18, 19, 20]);
  });

  it('a failing tier: the ring drops its own oldest, and a batch never spans the gap', () => {
    const ring = cache(3 * (eventEntryHeaderBytes + 3) + 1);
    const spill = new ArraySpill(10);
    ring.attachSpillTier(spill);
    for (let i = 1; i <= 5; i++) ring.append(event(3, i), 0, 3);
    expect(spill.events.map((e) => e.seq)).toEqual([1, 2]);
    spill.failing = true;
    for (let i = 6; i <= 7; i++) ring.append(event(3, i), 0, 3);
    expect(ring.droppedCount).toBe(2);
    const out = new Uint8Array(100);
    expect(parseBatch(out, 0, ring.readBatch(0, out, 0, 100)).map((e) => e[0])).toEqual([1, 2]);
    expect(ring.batch).toEqual({ firstSeq: 1, count: 2, bytes: 10 });
    expect(parseBatch(out, 0, ring.readBatch(2, out, 0, 100)).map((e) => e[0])).toEqual([5, 6, 7]);
    expect(ring.batch.firstSeq).toBe(5);
  });

  it('spillNow moves events on demand, split events included', () => {
    const ring = cache(50);
    const spill = new ArraySpill(100);
    ring.attachSpillTier(spill);
    for (let i = 1; i <= 4; i++) ring.append(event(7, i), 0, 7);
    ring.ack(2);
    ring.append(event(9, 5), 0, 9);
    expect(ring.spillNow(10)).toBe(3);
    expect(spill.events.map((e) => [e.seq, e.bytes.length, e.bytes[0]])).toEqual([[3, 7, 3], [4, 7, 4], [5, 9, 5]]);
    expect(ring.count).toBe(0);
  });
});

describe('event cache properties (fast-check)', () => {
  type Step = { kind: 'append'; length: number } | { kind: 'ack'; ahead: number } | { kind: 'read'; maxBytes: number };
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: 0, max: 40 }).map((length) => ({ kind: 'append' as const, length })) },
    { weight: 1, arbitrary: fc.integer({ min: -2, max: 6 }).map((ahead) => ({ kind: 'ack' as const, ahead })) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 120 }).map((maxBytes) => ({ kind: 'read' as const, maxBytes })) },
  );

  it('matches a plain array model under both policies: contents, seqs, drops, bytes used', () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 200 }), fc.boolean(), fc.array(step, { maxLength: 150 }), (capacity, reject, steps) => {
        const ring = cache(capacity, reject ? overflowRejectNewest : overflowDropOldest);
        let model: { seq: number; bytes: Uint8Array }[] = [];
        let nextSeq = 1;
        let dropped = 0;
        const used = () => model.reduce((sum, e) => sum + e.bytes.length + eventEntryHeaderBytes, 0);
        const out = new Uint8Array(200);
        for (const s of steps) {
          if (s.kind === 'append') {
            const bytes = Uint8Array.from({ length: s.length }, (_, i) => (nextSeq * 7 + i) & 0xff);
            const result = ring.append(bytes, 0, bytes.length);
            const needed = bytes.length + eventEntryHeaderBytes;
            if (needed > capacity - 1) {
              expect(result).toBe(eventErrorTooLarge);
              dropped++;
            } else if (reject && used() + needed > capacity - 1) {
              expect(result).toBe(eventErrorFull);
              dropped++;
            } else {
              while (used() + needed > capacity - 1) {
                model.shift();
                dropped++;
              }
              expect(result).toBe(nextSeq);
              model.push({ seq: nextSeq++, bytes });
            }
          } else if (s.kind === 'ack') {
            const seq = (model[0]?.seq ?? nextSeq) + s.ahead;
            const before = model.length;
            model = model.filter((e) => e.seq > seq);
            expect(ring.ack(seq)).toBe(before - model.length);
          } else {
            const bytes = ring.readBatch(0, out, 0, s.maxBytes);
            const events = parseBatch(out, 0, bytes);
            let fit = 0;
            let total = 0;
            for (const e of model) {
              if (total + 2 + e.bytes.length > s.maxBytes) break;
              total += 2 + e.bytes.length;
              fit++;
            }
            expect(events).toEqual(model.slice(0, fit).map((e) => e.bytes));
            expect(ring.batch.firstSeq).toBe(fit > 0 ? model[0].seq : 0);
          }
          expect(ring.count).toBe(model.length);
          expect(ring.bytesUsed).toBe(used());
          expect(ring.bytesUsed).toBeLessThanOrEqual(capacity - 1);
          expect(ring.droppedCount).toBe(dropped);
          expect(ring.oldestSeq()).toBe(model[0]?.seq ?? 0);
        }
      }),
      { numRuns: 400, seed: 99 },
    );
  });
});
