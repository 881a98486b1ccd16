// The event cache: encoded events held in one preallocated byte ring until the cloud acknowledges
// them. Appending copies bytes and allocates nothing; a full ring drops the oldest event or refuses
// the newest, and counts every drop so that sync can report it. Layout: firmware/DESIGN.md.
//
// [CACHE-1] Sequence numbers grow by one per stored event within a boot epoch; refused events get
//           none, so the events held always carry consecutive numbers.
// [CACHE-2] ack(seq) purges every event up to and including seq, in the flash tier too.
// [CACHE-3] Every event lost (dropped when full, refused, too large) adds one to droppedCount,
//           which stays until sync has reported it (clearDropped): loss is never silent.
// [CACHE-4] A flash spill tier (EventSpillTier), when attached, takes the oldest events before
//           any is dropped, and is read and acknowledged ahead of the ring.
import { eventCacheBytesMax, eventRecordBytesMax } from '../protocol/limits.ts';

/** Overflow policies. */
export const overflowDropOldest = 0;
export const overflowRejectNewest = 1;

/** The event is larger than eventRecordBytesMax or the ring itself (counted as dropped). */
export const eventErrorTooLarge = -20;
/** The ring is full and its policy is reject-newest (counted as dropped). */
export const eventErrorFull = -21;

/**
 * Per entry in the ring: u16 length (little-endian), then the event's bytes. Seqs are not stored:
 * the events held are consecutive ([CACHE-1]), so the oldest one's seq is enough.
 */
export const eventEntryHeaderBytes = 2;
/** Per event in a batch read out: u16 length (little-endian), then the event's bytes. */
export const eventBatchHeaderBytes = 2;

/** What the last readBatch produced. */
export interface EventBatch {
  /** Seq of the first event in the batch (0 when empty); the others follow one by one. */
  firstSeq: number;
  count: number;
  bytes: number;
}

/**
 * A flash tier behind the ring (issue 9). It holds only events older than the ring's oldest, in
 * seq order. Calls are made with the ring's own buffers: implementations copy, never keep them.
 * When full, the tier applies the cache's overflow policy to itself: under drop-oldest it drops
 * its own oldest events (counting them for takeDropped) and stores; under reject-newest it
 * returns false, and the ring then refuses the new event. So drops only ever come from the very
 * oldest end and the events held keep consecutive seqs.
 */
export interface EventSpillTier {
  /** Takes one event (the ring's oldest). Returns false when the tier cannot (full, off, failing). */
  store(seq: number, data: Uint8Array, offset: number, length: number): boolean;
  /** Events the tier dropped since the last call (added to the cache's droppedCount). */
  takeDropped(): number;
  /** Events held. */
  count(): number;
  /** Seq of the oldest event held (0 when empty). */
  oldestSeq(): number;
  /** Seq of the newest event held (0 when empty). */
  newestSeq(): number;
  /**
   * Appends events with seq > afterSeq, oldest first, as batch entries into `into` from
   * `offset`, while the next whole entry fits in `maxBytes`; updates `batch` (firstSeq if it was
   * 0, count, bytes). Returns the bytes written.
   */
  readBatch(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number;
  /** Purges events up to and including seq; returns how many. */
  ack(seq: number): number;
}

/**
 * Events of earlier boot epochs kept on flash (the spill tier after a reboot): sync sends them
 * under their own epoch, one epoch at a time, oldest first, ahead of this boot's events.
 */
export interface EventBacklog {
  /** Epoch of the oldest unacknowledged backlog events (0: no backlog). */
  backlogEpoch(): number;
  /** Unacknowledged events of backlogEpoch(). */
  backlogCount(): number;
  /** Oldest unacknowledged seq of backlogEpoch() (0: none). */
  backlogOldestSeq(): number;
  /** As EventSpillTier.readBatch, for the events of backlogEpoch(); `batch` is added to. */
  readBacklog(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number;
  /** Purges the events of an earlier `epoch` up to and including `seq`; returns how many. */
  ackBacklog(epoch: number, seq: number): number;
  /** Share of the flash area holding events, in percent (periodic sync connects early when high). */
  fillPercent(): number;
}

export interface EventCacheOptions {
  /** Ring size in bytes (eventCacheBytesMax by default); entries may fill all but one byte of it. */
  capacityBytes: number;
  /** overflowDropOldest (default) or overflowRejectNewest. */
  overflowPolicy: number;
  /** Seq of the first event of this boot epoch (1 by default). */
  firstSeq: number;
}

/** Defaults from limits.ts; pass this (or a copy with changes) to the constructor. */
export function eventCacheDefaults(): EventCacheOptions {
  return { capacityBytes: eventCacheBytesMax, overflowPolicy: overflowDropOldest, firstSeq: 1 };
}

export class EventCache {
  // Fields are `declare`d and set in the constructor: field initialisers would pull a
  // define-property helper into the bundle. Espruino finds a property by walking the object's
  // list of them, so the ones append uses come first (assignment order sets the order).
  /** Offset of the byte after the newest entry. */
  declare private tail: number;
  /** append's fast path may write up to (not including) this offset: the head, or the end. */
  declare private limit: number;
  declare private readonly ring: Uint8Array;
  declare readonly capacity: number;
  declare readonly overflowPolicy: number;
  /** Seq the next stored event gets. */
  declare nextSeq: number;
  /** Events lost and not yet reported ([CACHE-3]). */
  declare droppedCount: number;
  /** What the last readBatch produced. */
  declare readonly batch: EventBatch;
  /** Offset of the oldest entry; equal to tail when the ring is empty. */
  declare private head: number;
  /** Seq of the oldest event in the ring (nextSeq when it is empty). */
  declare private headSeq: number;
  declare private spill: EventSpillTier | null;
  declare private spillScratch: Uint8Array | null;

  constructor(options: EventCacheOptions) {
    const capacity = options.capacityBytes;
    if (!(capacity >= eventEntryHeaderBytes + 2 && capacity <= 1048576)) throw new Error('EventCache: bad capacity');
    if (options.overflowPolicy !== overflowDropOldest && options.overflowPolicy !== overflowRejectNewest) throw new Error('EventCache: bad overflow policy');
    this.tail = 0;
    this.limit = capacity;
    this.ring = new Uint8Array(capacity);
    this.nextSeq = options.firstSeq;
    this.capacity = capacity;
    this.overflowPolicy = options.overflowPolicy;
    this.head = 0;
    this.headSeq = options.firstSeq;
    this.droppedCount = 0;
    this.batch = { firstSeq: 0, count: 0, bytes: 0 };
    this.spill = null;
    this.spillScratch = null;
  }

  /** Events in the ring (not counting the spill tier). */
  get count(): number {
    return this.nextSeq - this.headSeq;
  }

  /** Bytes of the ring in use, entry headers included. */
  get bytesUsed(): number {
    return this.tail >= this.head ? this.tail - this.head : this.capacity - this.head + this.tail;
  }

  /** Attaches the flash tier ([CACHE-4]). */
  attachSpillTier(spill: EventSpillTier): void {
    this.spill = spill;
    if (this.spillScratch === null) this.spillScratch = new Uint8Array(eventRecordBytesMax);
  }

  /**
   * Stores `length` bytes of `data` from `offset` as one event. Returns its seq (>= 1), or
   * eventErrorTooLarge / eventErrorFull; a refused event is counted in droppedCount.
   */
  append(data: Uint8Array, offset: number, length: number): number {
    const tail = this.tail;
    // The literal 2 is eventEntryHeaderBytes: a module constant would cost a scope lookup per use.
    const end = tail + 2 + length;
    // The common case: the event fits before the head or the end of the buffer (one byte always
    // stays free, so that head === tail means empty).
    // (length >>> 0) turns a negative length into a huge one, so one comparison bounds both ends.
    if (end < this.limit && length >>> 0 <= eventRecordBytesMax) {
      const ring = this.ring;
      // A Uint8Array keeps the low 8 bits of what it is given.
      ring[tail] = length;
      ring[tail + 1] = length >>> 8;
      // A whole buffer is copied as it is; a slice of one needs a (short-lived) view.
      if (offset === 0 && data.length === length) ring.set(data, tail + 2);
      else ring.set(data.subarray(offset, offset + length), tail + 2);
      this.tail = end;
      return this.nextSeq++;
    }
    return this.appendSlow(data, offset, length);
  }

  /** Seq of the oldest event held, in the flash tier or the ring (0 when empty). */
  oldestSeq(): number {
    if (this.spill !== null && this.spill.count() > 0) return this.spill.oldestSeq();
    return this.nextSeq > this.headSeq ? this.headSeq : 0;
  }

  /** Seq of the newest event held (0 when empty). */
  newestSeq(): number {
    return this.totalCount() > 0 ? this.nextSeq - 1 : 0;
  }

  /** Events held in the ring and the flash tier. */
  totalCount(): number {
    return this.nextSeq - this.headSeq + (this.spill !== null ? this.spill.count() : 0);
  }

  /**
   * Copies events with seq > afterSeq, oldest first, into `into` from `offset` as entries of
   * u16 length + bytes, as many whole entries as fit in `maxBytes`. Returns the bytes written;
   * `batch` tells the first seq and the count. Pass afterSeq 0 to start from the oldest.
   */
  readBatch(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number): number {
    const batch = this.batch;
    batch.firstSeq = 0;
    batch.count = 0;
    batch.bytes = 0;
    let written = 0;
    let after = afterSeq;
    if (this.spill !== null && this.spill.count() > 0) {
      written = this.spill.readBatch(afterSeq, into, offset, maxBytes, batch);
      const spilledNewest = this.spill.newestSeq();
      if (spilledNewest > after) after = spilledNewest;
      // The flash tier stopped early for lack of room: the ring's events must wait too.
      if (batch.count > 0 && batch.firstSeq + batch.count - 1 < spilledNewest) {
        batch.bytes = written;
        return written;
      }
    }
    const ring = this.ring;
    const capacity = this.capacity;
    let at = this.head;
    for (let seq = this.headSeq; seq < this.nextSeq; seq++) {
      const length = ring[at] | (ring[at + 1 === capacity ? 0 : at + 1] << 8);
      let payload = at + eventEntryHeaderBytes;
      if (payload >= capacity) payload -= capacity;
      if (seq > after) {
        if (written + eventBatchHeaderBytes + length > maxBytes) break;
        // A batch holds consecutive seqs only; a gap (a failing tier) starts the next batch.
        if (batch.count > 0 && seq !== batch.firstSeq + batch.count) break;
        into[offset + written] = length & 0xff;
        into[offset + written + 1] = length >>> 8;
        written += eventBatchHeaderBytes;
        const first = capacity - payload < length ? capacity - payload : length;
        into.set(ring.subarray(payload, payload + first), offset + written);
        if (first < length) into.set(ring.subarray(0, length - first), offset + written + first);
        written += length;
        if (batch.count === 0) batch.firstSeq = seq;
        batch.count++;
      }
      at = payload + length;
      if (at >= capacity) at -= capacity;
    }
    batch.bytes = written;
    return written;
  }

  /** Purges every event with seq <= `seq` ([CACHE-2]); returns how many were purged. */
  ack(seq: number): number {
    let purged = 0;
    if (this.spill !== null && this.spill.count() > 0) {
      purged += this.spill.ack(seq);
      this.collectSpillDrops();
    }
    if (seq >= this.nextSeq - 1 && this.headSeq < this.nextSeq) {
      // Everything in the ring (the usual ack after a drain): no walk over the entries.
      purged += this.nextSeq - this.headSeq;
      this.head = 0;
      this.tail = 0;
      this.limit = this.capacity;
      this.headSeq = this.nextSeq;
      return purged;
    }
    while (this.headSeq < this.nextSeq && this.headSeq <= seq) {
      this.removeOldest();
      purged++;
    }
    return purged;
  }

  /** Moves up to `maxEvents` of the oldest ring events into the flash tier; returns how many. */
  spillNow(maxEvents: number): number {
    let moved = 0;
    while (moved < maxEvents && this.headSeq < this.nextSeq && this.spill !== null && this.spillOldest()) moved++;
    return moved;
  }

  /**
   * [CACHE-3] Adds the flash tier's own drops to droppedCount. The tier drops when it opens a
   * segment in a full area, which a timed flush or an ack can do too: call this after them.
   */
  collectSpillDrops(): void {
    if (this.spill === null) return;
    const tierDropped = this.spill.takeDropped();
    if (tierDropped > 0) this.droppedCount = this.droppedCount + tierDropped > 0xffffffff ? 0xffffffff : this.droppedCount + tierDropped;
  }

  /** Returns the drop count and resets it: for a caller that reports it in one step. */
  takeDropped(): number {
    const dropped = this.droppedCount;
    this.droppedCount = 0;
    return dropped;
  }

  /** Subtracts drops that sync has reported; drops counted since stay for the next report. */
  clearDropped(reported: number): void {
    this.droppedCount = reported >= this.droppedCount ? 0 : this.droppedCount - reported;
  }

  /** Forgets every event (a new boot epoch); the drop count stays until reported. */
  clear(firstSeq: number): void {
    this.head = 0;
    this.tail = 0;
    this.limit = this.capacity;
    this.nextSeq = firstSeq;
    this.headSeq = firstSeq;
  }

  /** Everything append's fast path does not take: wrap-around, overflow, offsets, refusals. */
  private appendSlow(data: Uint8Array, offset: number, length: number): number {
    const needed = length + eventEntryHeaderBytes;
    if (length > eventRecordBytesMax || needed > this.capacity - 1 || length < 0) {
      this.countDrop();
      return eventErrorTooLarge;
    }
    // Each round frees one entry, so this ends within `count` rounds.
    while (this.capacity - 1 - (this.tail >= this.head ? this.tail - this.head : this.capacity - this.head + this.tail) < needed) {
      if (this.spill !== null && this.spillOldest()) continue;
      // A tier that refused (failing, or full under reject-newest): the ring's own policy decides.
      if (this.overflowPolicy === overflowRejectNewest) {
        this.countDrop();
        return eventErrorFull;
      }
      this.removeOldest();
      this.countDrop();
    }
    const ring = this.ring;
    const capacity = this.capacity;
    let at = this.tail;
    if (at + eventEntryHeaderBytes + length < capacity) {
      // No wrap (the common case once a full ring has dropped its oldest): two native copies.
      ring[at] = length & 0xff;
      ring[at + 1] = length >>> 8;
      if (offset === 0 && data.length === length) ring.set(data, at + eventEntryHeaderBytes);
      else ring.set(data.subarray(offset, offset + length), at + eventEntryHeaderBytes);
      at += eventEntryHeaderBytes + length;
    } else {
      ring[at] = length & 0xff;
      at = at + 1 === capacity ? 0 : at + 1;
      ring[at] = length >>> 8;
      at = at + 1 === capacity ? 0 : at + 1;
      const first = capacity - at < length ? capacity - at : length;
      if (first > 0) ring.set(data.subarray(offset, offset + first), at);
      if (first < length) ring.set(data.subarray(offset + first, offset + length), 0);
      at += length;
      if (at >= capacity) at -= capacity;
    }
    this.tail = at;
    this.limit = this.head > at ? this.head : capacity;
    return this.nextSeq++;
  }

  private countDrop(): void {
    if (this.droppedCount < 0xffffffff) this.droppedCount++;
  }

  private removeOldest(): void {
    const ring = this.ring;
    const at = this.head;
    const length = ring[at] | (ring[at + 1 === this.capacity ? 0 : at + 1] << 8);
    let next = at + length + eventEntryHeaderBytes;
    if (next >= this.capacity) next -= this.capacity;
    this.head = next;
    this.headSeq++;
    this.limit = next > this.tail ? next : this.capacity;
  }

  /** Hands the oldest ring event to the flash tier; true when it took it. */
  private spillOldest(): boolean {
    const spill = this.spill;
    const scratch = this.spillScratch;
    if (spill === null || scratch === null || this.headSeq === this.nextSeq) return false;
    const ring = this.ring;
    const capacity = this.capacity;
    const at = this.head;
    const length = ring[at] | (ring[at + 1 === capacity ? 0 : at + 1] << 8);
    let payload = at + eventEntryHeaderBytes;
    if (payload >= capacity) payload -= capacity;
    let stored: boolean;
    if (payload + length <= capacity) {
      stored = spill.store(this.headSeq, ring, payload, length);
    } else {
      const first = capacity - payload;
      scratch.set(ring.subarray(payload, capacity), 0);
      scratch.set(ring.subarray(0, length - first), first);
      stored = spill.store(this.headSeq, scratch, 0, length);
    }
    if (stored) this.removeOldest();
    this.collectSpillDrops();
    return stored;
  }
}
