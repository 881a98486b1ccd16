// The durable event cache's flash tier: events spilled from the RAM ring into a segmented log on
// flash, written only into erased bytes, in chunks of about half a KiB. Layout: firmware/DESIGN.md,
// "Durable event cache".
//
// [SPILL-1] Bytes are only ever programmed where they are erased; a segment is one sector, erased
//           as a whole once every event in it is acknowledged (or dropped when the area is full).
// [SPILL-2] Spilled events wait in one RAM chunk buffer and are programmed as one CRC-checked chunk
//           when it is full, on flush(), or flushDelayMs after the first of them (tick). A power
//           cut loses the unflushed chunk, as it loses the RAM ring: what reached flash stays.
// [SPILL-3] An ack is persisted as an ack record (seq + check word) in a slot of the segment that
//           holds the first still-unacknowledged event, or a newer segment of the same epoch,
//           BEFORE any segment is erased; mount applies, per epoch, the highest valid record.
// [SPILL-4] A segment is retired (a word in its header programmed) before it is erased, so a torn
//           erase that leaves the header readable still reads as retired, never as unacknowledged.
// [SPILL-5] Mount never throws on flash contents and ends within a bounded number of reads: a
//           chunk with a bad header or CRC ends its segment's scan.
// [SPILL-6] Every segment carries the boot epoch its events were created in. The EventSpillTier
//           methods serve the current epoch; earlier epochs are the backlog (backlogEpoch,
//           readBacklog, ackBacklog), sent first and under their own epoch.
// [SPILL-7] Every segment carries the CRC of the event templates its events were encoded with
//           (templatesCrc). Mount drops, counts (takeDropped) and retires the segments of another
//           template set: a firmware update that changed the templates would otherwise send old
//           records under the new layouts. Nothing is sent wrong and nothing stalls; the loss is
//           reported.
import { flashOk, type Flash } from '../hal/flash.ts';
import type { Crc32 } from '../protocol/crc32.ts';
import { eventRecordBytesMax, spillAckSlotsPerSegment, spillChunkBytes, spillFlushDelayMs, spillSectorCountMax } from '../protocol/limits.ts';
import { overflowDropOldest, overflowRejectNewest, type EventBacklog, type EventBatch, type EventSpillTier } from './event-cache.ts';
import { getU32, putU32 } from '../protocol/bits.ts';

/** Operating results of flush(): a closed set. */
export const spillOk = 0;
/** The area is full and the policy is reject-newest: the chunk stays in RAM. */
export const spillErrorFull = -30;
/** No usable sector is left (worn, failing). */
export const spillErrorFlash = -31;

/**
 * Segment header: magic "TdE" + format 2, segment number, epoch, first seq, templates CRC,
 * header CRC, retire word.
 */
export const spillHeaderBytes = 28;
/** Ack slot: acknowledged seq, check word (CRC of the seq XOR the header CRC). */
export const spillAckSlotBytes = 8;
/** Chunk: u16 body length, u16 event count, body, u32 CRC of header and body. */
export const spillChunkOverheadBytes = 8;

const magic0 = 0x54;
const magic1 = 0x64;
const magic2 = 0x45;
const format = 2;
/** XORed into the header CRC to make the retire word. */
const retireMask = 0x5a5a5a5a;
/** Header offsets: templates CRC, header CRC (of the bytes before it), retire word. */
const headerTemplatesCrcAt = 16;
const headerCrcAt = 20;
const headerRetireAt = 24;

/** Sector states in RAM. */
const sectorDirty = 0;
const sectorErased = 1;
const sectorLive = 2;
const sectorBad = 3;

export interface EventSpillOptions {
  /** CRC-32 (IEEE): the table-driven one in Node, E.CRC32 on a board. */
  crc32: Crc32;
  /** overflowDropOldest or overflowRejectNewest: the same as the event cache's. */
  overflowPolicy: number;
  /** A spilled event waits at most this long (plus one tick) in RAM before it is programmed; 0: at once. */
  flushDelayMs: number;
  /** A chunk is programmed once it would grow past this many bytes. */
  chunkBytes: number;
  /** Ack slots per segment. */
  ackSlots: number;
  /** Largest event accepted. */
  recordBytesMax: number;
  /** [SPILL-7] CRC of the event templates this firmware encodes with (eventTemplatesCrc). */
  templatesCrc: number;
}

/** Defaults from limits.ts; pass this (or a copy with changes) to createEventSpill. */
export function eventSpillDefaults(crc32: Crc32): EventSpillOptions {
  return {
    crc32: crc32,
    overflowPolicy: overflowDropOldest,
    flushDelayMs: spillFlushDelayMs,
    chunkBytes: spillChunkBytes,
    ackSlots: spillAckSlotsPerSegment,
    recordBytesMax: eventRecordBytesMax,
    templatesCrc: 0,
  };
}

export class EventSpill implements EventSpillTier, EventBacklog {
  // Fields are `declare`d and set in the constructor: field initialisers would pull a
  // define-property helper into the bundle.
  /** Since construction: chunks programmed, segments opened and erased, acks that found no slot. */
  declare chunksWritten: number;
  declare segmentsOpened: number;
  declare segmentsErased: number;
  declare acksNotPersisted: number;
  /** After mount: segments and unacknowledged events found. */
  declare segmentsRecovered: number;
  declare eventsRecovered: number;
  /** Since construction: unacknowledged events mount dropped for another template set ([SPILL-7]). */
  declare eventsForeign: number;

  declare private readonly flash: Flash;
  declare private readonly crc32: Crc32;
  declare private readonly sectorSize: number;
  declare private readonly sectorCount: number;
  declare private readonly overflowPolicy: number;
  declare private readonly flushDelayMs: number;
  declare private readonly chunkBytes: number;
  declare private readonly ackSlots: number;
  declare private readonly recordBytesMax: number;
  declare private readonly templatesCrc: number;
  declare private readonly dataStart: number;
  // Per sector.
  declare private readonly state: Uint8Array;
  declare private readonly number: Uint32Array;
  declare private readonly epochOf: Uint32Array;
  declare private readonly first: Uint32Array;
  declare private readonly stored: Uint32Array;
  declare private readonly acked: Uint32Array;
  /** Mount only: the highest valid ack record found in the sector (0: none). */
  declare private readonly ackRecord: Uint32Array;
  declare private readonly writeAt: Uint32Array;
  declare private readonly slot: Uint16Array;
  declare private readonly headerCrc: Uint32Array;
  /** Mount only: the segment's templates CRC differs from this firmware's ([SPILL-7]). */
  declare private readonly foreign: Uint8Array;
  /** Live sectors, oldest segment first. */
  declare private readonly order: Uint8Array;
  declare private orderCount: number;
  /** The newest segment takes chunks (false after mount, a failed program, an epoch change). */
  declare private appendable: boolean;
  declare private nextNumber: number;
  declare private lastOpened: number;
  declare private epoch: number;
  /** Mount only: the highest epoch a valid header named. */
  declare private epochSeenMax: number;
  declare private mounted: boolean;
  declare private dropped: number;
  // The chunk being filled: header bytes 0..3 are set when it is programmed.
  declare private readonly chunk: Uint8Array;
  declare private chunkFill: number;
  declare private chunkCount: number;
  declare private chunkFirstSeq: number;
  declare private chunkSinceMs: number;
  /** Reads a whole chunk (mount, readBatch) and builds headers and ack slots. */
  declare private readonly scratch: Uint8Array;
  // Where the last read stopped: sector, chunk offset, seq of the chunk's first event.
  declare private cursorSector: number;
  declare private cursorOffset: number;
  declare private cursorSeq: number;

  constructor(flash: Flash, options: EventSpillOptions) {
    this.flash = flash;
    this.crc32 = options.crc32;
    this.sectorSize = flash.sectorSize;
    this.sectorCount = flash.sectorCount;
    this.overflowPolicy = options.overflowPolicy;
    this.flushDelayMs = options.flushDelayMs;
    this.chunkBytes = options.chunkBytes;
    this.ackSlots = options.ackSlots;
    this.recordBytesMax = options.recordBytesMax;
    this.templatesCrc = options.templatesCrc >>> 0;
    this.dataStart = spillHeaderBytes + options.ackSlots * spillAckSlotBytes;
    if (options.overflowPolicy !== overflowDropOldest && options.overflowPolicy !== overflowRejectNewest) throw new Error('event spill: bad overflow policy');
    if (this.sectorCount < 2 || this.sectorCount > spillSectorCountMax) throw new Error('event spill: needs 2 to spillSectorCountMax sectors');
    if (options.recordBytesMax < 1 || options.recordBytesMax > 16383 || options.ackSlots < 1) throw new Error('event spill: bad limits');
    // The chunk buffer holds up to chunkBytes plus one largest record, so any event fits.
    const bufferBytes = options.chunkBytes + options.recordBytesMax + 2 + spillChunkOverheadBytes;
    if (this.dataStart + bufferBytes > this.sectorSize) throw new Error('event spill: sector too small for a chunk');
    this.chunk = new Uint8Array(bufferBytes);
    this.scratch = new Uint8Array(bufferBytes > this.dataStart ? bufferBytes : this.dataStart);
    const count = this.sectorCount;
    this.state = new Uint8Array(count);
    this.number = new Uint32Array(count);
    this.epochOf = new Uint32Array(count);
    this.first = new Uint32Array(count);
    this.stored = new Uint32Array(count);
    this.acked = new Uint32Array(count);
    this.ackRecord = new Uint32Array(count);
    this.writeAt = new Uint32Array(count);
    this.slot = new Uint16Array(count);
    this.headerCrc = new Uint32Array(count);
    this.foreign = new Uint8Array(count);
    this.order = new Uint8Array(count);
    this.orderCount = 0;
    this.chunksWritten = 0;
    this.segmentsOpened = 0;
    this.segmentsErased = 0;
    this.acksNotPersisted = 0;
    this.segmentsRecovered = 0;
    this.eventsRecovered = 0;
    this.eventsForeign = 0;
    this.appendable = false;
    this.nextNumber = 1;
    this.lastOpened = count - 1;
    this.epoch = 0;
    this.epochSeenMax = 0;
    this.mounted = false;
    this.dropped = 0;
    this.chunkFill = 4;
    this.chunkCount = 0;
    this.chunkFirstSeq = 0;
    this.chunkSinceMs = -1;
    this.cursorSector = -1;
    this.cursorOffset = 0;
    this.cursorSeq = 0;
  }

  // ---- boot ----

  /**
   * Rebuilds the tier from flash ([SPILL-5]); `epoch` is this boot's. Events of other epochs
   * become the backlog. Never throws on flash contents. Returns the unacknowledged events found.
   */
  mount(epoch: number): number {
    this.mounted = true;
    this.epoch = epoch;
    this.orderCount = 0;
    this.appendable = false;
    this.nextNumber = 1;
    this.chunkFill = 4;
    this.chunkCount = 0;
    this.chunkSinceMs = -1;
    this.cursorSector = -1;
    this.segmentsRecovered = 0;
    this.eventsRecovered = 0;
    let newest = -1;
    this.epochSeenMax = 0;
    for (let sector = 0; sector < this.sectorCount; sector++) {
      this.state[sector] = sectorDirty;
      if (!this.readHeader(sector)) continue;
      if (this.epochOf[sector] > this.epochSeenMax) this.epochSeenMax = this.epochOf[sector];
      if (this.number[sector] >= this.nextNumber) {
        this.nextNumber = this.number[sector] + 1;
        newest = sector;
      }
      if (getU32(this.scratch, headerRetireAt) === ((this.headerCrc[sector] ^ retireMask) >>> 0)) continue;
      this.foreign[sector] = getU32(this.scratch, headerTemplatesCrcAt) !== this.templatesCrc ? 1 : 0;
      this.scanSegment(sector);
      this.state[sector] = sectorLive;
      this.insertOrdered(sector);
    }
    // Segment numbers wrap only after 2^32 segments: never within a flash lifetime.
    if (newest >= 0) this.lastOpened = newest;
    // Acks are monotonic within an epoch: the highest record of an epoch covers all its segments.
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      let highest = this.first[sector] - 1;
      for (let j = 0; j < this.orderCount; j++) {
        const other = this.order[j];
        if (this.epochOf[other] === this.epochOf[sector] && this.ackRecord[other] > highest) highest = this.ackRecord[other];
      }
      const last = this.first[sector] + this.stored[sector] - 1;
      this.acked[sector] = highest > last ? last : highest;
    }
    // Fully acknowledged segments hold nothing: forget them (they are erased before reuse).
    // [SPILL-7] Segments of another template set: their events are dropped (counted, so they are
    // reported) and the segment retired, so a later boot neither sends nor counts them again.
    let kept = 0;
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (this.foreign[sector] === 1) {
        const lost = this.unackedIn(sector);
        this.eventsForeign += lost;
        this.countDropped(lost);
        this.retire(sector);
        this.state[sector] = sectorDirty;
      } else if (this.unackedIn(sector) > 0) {
        this.order[kept++] = sector;
        this.eventsRecovered += this.unackedIn(sector);
      } else {
        this.state[sector] = sectorDirty;
      }
    }
    this.orderCount = kept;
    this.segmentsRecovered = kept;
    return this.eventsRecovered;
  }

  /** The boot epoch given to mount. */
  currentEpoch(): number {
    return this.epoch;
  }

  /**
   * The highest boot epoch any segment header on flash names, retired or acknowledged ones
   * included (0: none). A boot epoch at or below it was used before: the device must move past.
   */
  highestEpochSeen(): number {
    return this.epochSeenMax;
  }

  // ---- EventSpillTier: the current epoch ----

  store(seq: number, data: Uint8Array, offset: number, length: number): boolean {
    if (!this.mounted) throw new Error('event spill: mount() first');
    if (length < 0 || length > this.recordBytesMax) return false;
    // Seqs in a chunk are consecutive ([CACHE-1]); anything else starts a new chunk.
    if (this.chunkCount > 0 && seq !== this.chunkFirstSeq + this.chunkCount) {
      if (this.flush() !== spillOk) return false;
    }
    const recordBytes = (length < 0x80 ? 1 : 2) + length;
    if (this.chunkCount > 0 && this.chunkFill + recordBytes + 4 > this.chunkBytes) {
      if (this.flush() !== spillOk) return false;
    }
    const chunk = this.chunk;
    let at = this.chunkFill;
    if (length < 0x80) {
      chunk[at++] = length;
    } else {
      chunk[at++] = (length & 0x7f) | 0x80;
      chunk[at++] = length >>> 7;
    }
    for (let i = 0; i < length; i++) chunk[at + i] = data[offset + i];
    this.chunkFill = at + length;
    if (this.chunkCount === 0) this.chunkFirstSeq = seq;
    this.chunkCount++;
    // Write-through: the event is on flash before store returns (or refused, and the ring keeps it).
    if (this.flushDelayMs <= 0 && this.flush() !== spillOk) {
      this.unstoreNewest(at - (length < 0x80 ? 1 : 2));
      return false;
    }
    return true;
  }

  takeDropped(): number {
    const dropped = this.dropped;
    this.dropped = 0;
    return dropped;
  }

  count(): number {
    return this.countEpoch(this.epoch) + this.chunkCount;
  }

  oldestSeq(): number {
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (this.epochOf[sector] === this.epoch && this.unackedIn(sector) > 0) return this.firstUnackedIn(sector);
    }
    return this.chunkCount > 0 ? this.chunkFirstSeq : 0;
  }

  newestSeq(): number {
    if (this.chunkCount > 0) return this.chunkFirstSeq + this.chunkCount - 1;
    for (let i = this.orderCount - 1; i >= 0; i--) {
      const sector = this.order[i];
      if (this.epochOf[sector] === this.epoch && this.unackedIn(sector) > 0) return this.first[sector] + this.stored[sector] - 1;
    }
    return 0;
  }

  readBatch(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number {
    let written = this.readEpoch(this.epoch, afterSeq, into, offset, maxBytes, batch);
    if (written < 0) {
      written = -written - 1;
    } else {
      written += this.readChunkBuffer(afterSeq, into, offset + written, maxBytes - written, batch);
    }
    batch.bytes += written;
    return written;
  }

  ack(seq: number): number {
    if (!this.mounted) return 0;
    // Acknowledged events still in the chunk buffer are programmed first: dropping them from RAM
    // would leave a gap in the open segment's seqs and force a new segment (one erase per sync).
    // Every spilled event is programmed once either way; only the chunk gets shorter.
    if (this.chunkCount > 0 && seq >= this.chunkFirstSeq) this.flush();
    let purged = this.ackEpoch(this.epoch, seq);
    // Events still in the chunk buffer: drop the acknowledged ones from its front.
    if (this.chunkCount > 0 && seq >= this.chunkFirstSeq) {
      const last = this.chunkFirstSeq + this.chunkCount - 1;
      if (seq >= last) {
        purged += this.chunkCount;
        this.chunkCount = 0;
        this.chunkFill = 4;
        this.chunkSinceMs = -1;
      } else {
        const remove = seq - this.chunkFirstSeq + 1;
        let at = 4;
        for (let i = 0; i < remove; i++) at += this.recordSizeAt(this.chunk, at);
        const chunk = this.chunk;
        const fill = this.chunkFill;
        // Shift the rest to the front byte by byte (overlapping ranges, no view allocated).
        for (let i = at; i < fill; i++) chunk[4 + i - at] = chunk[i];
        this.chunkFill = fill - (at - 4);
        this.chunkCount -= remove;
        this.chunkFirstSeq = seq + 1;
        purged += remove;
      }
    }
    return purged;
  }

  // ---- backlog: events of earlier boot epochs ([SPILL-6]) ----

  /** Epoch of the oldest events held when it is not this boot's (0: no backlog). */
  backlogEpoch(): number {
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      // A segment whose events are all acknowledged (its ack held in RAM only) hides nothing.
      if (this.epochOf[sector] !== this.epoch && this.unackedIn(sector) > 0) return this.epochOf[sector];
    }
    return 0;
  }

  /** Unacknowledged events of backlogEpoch(). */
  backlogCount(): number {
    const epoch = this.backlogEpoch();
    return epoch === 0 ? 0 : this.countEpoch(epoch);
  }

  /** Oldest unacknowledged seq of backlogEpoch() (0: none). */
  backlogOldestSeq(): number {
    const epoch = this.backlogEpoch();
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (epoch !== 0 && this.epochOf[sector] === epoch && this.unackedIn(sector) > 0) return this.firstUnackedIn(sector);
    }
    return 0;
  }

  /** As readBatch, for the events of backlogEpoch(). */
  readBacklog(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number {
    const epoch = this.backlogEpoch();
    if (epoch === 0) return 0;
    let written = this.readEpoch(epoch, afterSeq, into, offset, maxBytes, batch);
    if (written < 0) written = -written - 1;
    batch.bytes += written;
    return written;
  }

  /** Purges the events of `epoch` up to and including `seq`; returns how many. */
  ackBacklog(epoch: number, seq: number): number {
    if (!this.mounted || epoch === this.epoch) return 0;
    return this.ackEpoch(epoch, seq);
  }

  /** Unacknowledged events of every epoch, the chunk buffer's included. */
  heldCount(): number {
    let count = this.chunkCount;
    for (let i = 0; i < this.orderCount; i++) count += this.unackedIn(this.order[i]);
    return count;
  }

  fillPercent(): number {
    return Math.floor(this.orderCount * 100 / this.sectorCount);
  }

  // ---- persistence control ----

  /** Programs the chunk buffer once its first event has waited flushDelayMs ([SPILL-2]). */
  tick(nowMs: number): number {
    if (this.chunkCount === 0) {
      this.chunkSinceMs = -1;
      return spillOk;
    }
    if (this.chunkSinceMs < 0) this.chunkSinceMs = nowMs;
    if (nowMs - this.chunkSinceMs < this.flushDelayMs) return spillOk;
    return this.flush();
  }

  /** Programs the chunk buffer now (before a planned reboot, or from tick). */
  flush(): number {
    if (!this.mounted) throw new Error('event spill: mount() first');
    if (this.chunkCount === 0) return spillOk;
    const chunk = this.chunk;
    const bodyBytes = this.chunkFill - 4;
    chunk[0] = bodyBytes & 0xff;
    chunk[1] = bodyBytes >>> 8;
    chunk[2] = this.chunkCount & 0xff;
    chunk[3] = this.chunkCount >>> 8;
    putU32(chunk, this.chunkFill, this.crc32(chunk, 0, this.chunkFill));
    const total = this.chunkFill + 4;
    // Each round either programs the chunk, or opens a sector, or drops a segment, or marks a
    // sector failing: bounded by a few rounds per sector.
    for (let round = 0; round < this.sectorCount * 3 + 2; round++) {
      const sector = this.orderCount > 0 ? this.order[this.orderCount - 1] : -1;
      const at = sector >= 0 ? (this.writeAt[sector] + 3) & ~3 : 0;
      if (sector >= 0 && this.appendable && this.epochOf[sector] === this.epoch && at + total <= this.sectorSize && this.first[sector] + this.stored[sector] === this.chunkFirstSeq) {
        if (this.flash.prog(sector * this.sectorSize + at, chunk, 0, total) === flashOk) {
          this.stored[sector] += this.chunkCount;
          this.writeAt[sector] = at + total;
          this.chunksWritten++;
          this.chunkCount = 0;
          this.chunkFill = 4;
          this.chunkSinceMs = -1;
          return spillOk;
        }
        // Bytes believed erased were not, or the sector wore out: append elsewhere.
        this.appendable = false;
        continue;
      }
      // An emptied segment kept open that cannot take this chunk: erase it now (its ack record
      // covers all its events, so a cut here loses nothing).
      if (sector >= 0 && this.epochOf[sector] === this.epoch && this.unackedIn(sector) === 0) {
        this.eraseSegment(sector);
        continue;
      }
      this.appendable = false;
      const opened = this.openSegment();
      if (opened === spillOk) continue;
      if (opened === spillErrorFlash) return spillErrorFlash;
      // No free sector: the area is full.
      if (this.overflowPolicy === overflowRejectNewest || this.orderCount === 0) return spillErrorFull;
      this.dropOldestSegment();
    }
    return spillErrorFlash;
  }

  /** Sectors found failing during this boot. */
  badSectorCount(): number {
    let count = 0;
    for (let sector = 0; sector < this.sectorCount; sector++) if (this.state[sector] === sectorBad) count++;
    return count;
  }

  /** Events in the chunk buffer, not yet on flash. */
  pendingCount(): number {
    return this.chunkCount;
  }

  // ---- internals ----

  /** Reads and checks sector's header into scratch and the per-sector arrays; false if invalid. */
  private readHeader(sector: number): boolean {
    const header = this.scratch;
    if (this.flash.read(sector * this.sectorSize, header, 0, spillHeaderBytes) !== flashOk) return false;
    if (header[0] !== magic0 || header[1] !== magic1 || header[2] !== magic2 || header[3] !== format) return false;
    const crc = getU32(header, headerCrcAt);
    if (this.crc32(header, 0, headerCrcAt) !== crc) return false;
    this.number[sector] = getU32(header, 4);
    this.epochOf[sector] = getU32(header, 8);
    this.first[sector] = getU32(header, 12);
    this.headerCrc[sector] = crc;
    return this.first[sector] >= 1;
  }

  /** Reads a live segment's ack slots and chunks: stored count, write offset, acked seq. */
  private scanSegment(sector: number): void {
    const flash = this.flash;
    const base = sector * this.sectorSize;
    const scratch = this.scratch;
    let acked = 0;
    let slot = 0;
    if (flash.read(base + spillHeaderBytes, scratch, 0, this.ackSlots * spillAckSlotBytes) === flashOk) {
      for (; slot < this.ackSlots; slot++) {
        const at = slot * spillAckSlotBytes;
        let erased = true;
        for (let i = 0; i < spillAckSlotBytes; i++) if (scratch[at + i] !== 0xff) erased = false;
        if (erased) break;
        const value = getU32(scratch, at);
        if (getU32(scratch, at + 4) === ((this.crc32(scratch, at, 4) ^ this.headerCrc[sector]) >>> 0) && value > acked) acked = value;
      }
    } else {
      slot = this.ackSlots;
    }
    this.slot[sector] = slot;
    let offset = this.dataStart;
    let count = 0;
    const bodyMax = this.chunk.length - spillChunkOverheadBytes;
    // Each round advances by at least a chunk's overhead: at most sectorSize / 8 rounds.
    while (offset + spillChunkOverheadBytes <= this.sectorSize) {
      // One read per chunk (as much as the largest chunk, or what is left of the sector): on a
      // Storage without memory-mapped flash each read copies the sector's file.
      const available = this.sectorSize - offset < scratch.length ? this.sectorSize - offset : scratch.length;
      if (flash.read(base + offset, scratch, 0, available) !== flashOk) break;
      const bodyBytes = scratch[0] | (scratch[1] << 8);
      const events = scratch[2] | (scratch[3] << 8);
      if (bodyBytes === 0xffff && events === 0xffff) break;
      if (events === 0 || bodyBytes > bodyMax || events > bodyBytes || spillChunkOverheadBytes + bodyBytes > available) break;
      if (this.crc32(scratch, 0, bodyBytes + 4) !== getU32(scratch, bodyBytes + 4)) break;
      // The records are not walked here: the CRC vouches for what this code wrote, and readEpoch
      // bounds every record by its chunk's body. Mount stays one CRC per chunk (E.CRC32 is native).
      count += events;
      offset = (offset + spillChunkOverheadBytes + bodyBytes + 3) & ~3;
    }
    this.stored[sector] = count;
    this.writeAt[sector] = offset;
    this.ackRecord[sector] = acked;
  }

  /** Bytes of the record (length prefix + event) at `at` of `bytes`. */
  private recordSizeAt(bytes: Uint8Array, at: number): number {
    const lead = bytes[at];
    if (lead < 0x80) return 1 + lead;
    return 2 + ((lead & 0x7f) | (bytes[at + 1] << 7));
  }

  /** Inserts a live sector into the order by segment number (mount only; at most sectorCount). */
  private insertOrdered(sector: number): void {
    let i = this.orderCount;
    while (i > 0 && this.number[this.order[i - 1]] > this.number[sector]) {
      this.order[i] = this.order[i - 1];
      i--;
    }
    this.order[i] = sector;
    this.orderCount++;
  }

  private removeFromOrder(sector: number): void {
    let kept = 0;
    for (let i = 0; i < this.orderCount; i++) if (this.order[i] !== sector) this.order[kept++] = this.order[i];
    this.orderCount = kept;
    if (this.cursorSector === sector) this.cursorSector = -1;
  }

  private unackedIn(sector: number): number {
    const firstUnacked = this.firstUnackedIn(sector);
    const last = this.first[sector] + this.stored[sector] - 1;
    return last >= firstUnacked ? last - firstUnacked + 1 : 0;
  }

  private firstUnackedIn(sector: number): number {
    return this.acked[sector] >= this.first[sector] ? this.acked[sector] + 1 : this.first[sector];
  }

  private countEpoch(epoch: number): number {
    let count = 0;
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (this.epochOf[sector] === epoch) count += this.unackedIn(sector);
    }
    return count;
  }

  /** Takes back the newest event of the chunk buffer (write-through refused); `at` is where it began. */
  private unstoreNewest(at: number): void {
    this.chunkFill = at;
    this.chunkCount--;
  }

  /**
   * Copies events of `epoch` with seq > afterSeq as batch entries. Returns the bytes written, or
   * -(bytes + 1) when it stopped for lack of room or a gap (nothing after may follow).
   */
  private readEpoch(epoch: number, afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number {
    let written = 0;
    const flash = this.flash;
    const scratch = this.scratch;
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (this.epochOf[sector] !== epoch) continue;
      const last = this.first[sector] + this.stored[sector] - 1;
      let start = this.firstUnackedIn(sector);
      if (afterSeq + 1 > start) start = afterSeq + 1;
      if (start > last) continue;
      const base = sector * this.sectorSize;
      let chunkOffset = this.dataStart;
      let chunkSeq = this.first[sector];
      if (this.cursorSector === sector && this.cursorSeq <= start) {
        chunkOffset = this.cursorOffset;
        chunkSeq = this.cursorSeq;
      }
      // Mount checked every chunk up to `last`; each round moves one chunk on.
      while (chunkSeq <= last) {
        if (flash.read(base + chunkOffset, scratch, 0, 4) !== flashOk) return -(written + 1);
        const bodyBytes = scratch[0] | (scratch[1] << 8);
        const events = scratch[2] | (scratch[3] << 8);
        if (events === 0 || events === 0xffff) return -(written + 1);
        if (chunkSeq + events - 1 >= start) {
          if (flash.read(base + chunkOffset + 4, scratch, 4, bodyBytes) !== flashOk) return -(written + 1);
          let at = 4;
          for (let k = 0; k < events; k++) {
            const seq = chunkSeq + k;
            const size = this.recordSizeAt(scratch, at);
            const length = size - (scratch[at] < 0x80 ? 1 : 2);
            if (at + size > 4 + bodyBytes) return -(written + 1);
            if (seq >= start) {
              if (written + 2 + length > maxBytes || (batch.count > 0 && seq !== batch.firstSeq + batch.count)) {
                this.cursorSector = sector;
                this.cursorOffset = chunkOffset;
                this.cursorSeq = chunkSeq;
                return -(written + 1);
              }
              const to = offset + written;
              into[to] = length & 0xff;
              into[to + 1] = length >>> 8;
              const from = at + size - length;
              for (let b = 0; b < length; b++) into[to + 2 + b] = scratch[from + b];
              written += 2 + length;
              if (batch.count === 0) batch.firstSeq = seq;
              batch.count++;
            }
            at += size;
          }
        }
        chunkOffset = (chunkOffset + spillChunkOverheadBytes + bodyBytes + 3) & ~3;
        chunkSeq += events;
      }
    }
    return written;
  }

  /** Copies the chunk buffer's events with seq > afterSeq (current epoch); returns the bytes. */
  private readChunkBuffer(afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch): number {
    let written = 0;
    let at = 4;
    const chunk = this.chunk;
    for (let k = 0; k < this.chunkCount; k++) {
      const seq = this.chunkFirstSeq + k;
      const size = this.recordSizeAt(chunk, at);
      const length = size - (chunk[at] < 0x80 ? 1 : 2);
      if (seq > afterSeq) {
        if (written + 2 + length > maxBytes || (batch.count > 0 && seq !== batch.firstSeq + batch.count)) break;
        const to = offset + written;
        into[to] = length & 0xff;
        into[to + 1] = length >>> 8;
        const from = at + size - length;
        for (let b = 0; b < length; b++) into[to + 2 + b] = chunk[from + b];
        written += 2 + length;
        if (batch.count === 0) batch.firstSeq = seq;
        batch.count++;
      }
      at += size;
    }
    return written;
  }

  /** Acknowledges the flash events of `epoch` up to `seq`: ack record first, then erases ([SPILL-3]). */
  private ackEpoch(epoch: number, seq: number): number {
    let purged = 0;
    let target = -1;
    let newest = -1;
    for (let i = 0; i < this.orderCount; i++) {
      const sector = this.order[i];
      if (this.epochOf[sector] !== epoch) continue;
      newest = i;
      const firstUnacked = this.firstUnackedIn(sector);
      const last = this.first[sector] + this.stored[sector] - 1;
      if (seq >= firstUnacked && last >= firstUnacked) purged += (seq < last ? seq : last) - firstUnacked + 1;
      if (target < 0 && last >= seq + 1) target = i;
    }
    if (purged === 0) return 0;
    if (target < 0) target = newest;
    // The record goes to the segment holding the first event still unacknowledged (or the
    // newest), which outlives every segment this ack empties; a full one passes to a newer one.
    let persisted = false;
    for (let i = target; i < this.orderCount && !persisted; i++) {
      const sector = this.order[i];
      if (this.epochOf[sector] === epoch && this.writeAckSlot(sector, seq)) persisted = true;
    }
    if (!persisted) this.acksNotPersisted++;
    // Erase the emptied segments, oldest first; the others remember the ack in RAM.
    let i = 0;
    while (i < this.orderCount) {
      const sector = this.order[i];
      if (this.epochOf[sector] === epoch) {
        const last = this.first[sector] + this.stored[sector] - 1;
        this.acked[sector] = seq < last ? (seq > this.acked[sector] ? seq : this.acked[sector]) : last;
        // The segment being appended to stays open when emptied: erasing it would waste its
        // erased bytes, one erase per sync instead of one per segment filled.
        if (this.unackedIn(sector) === 0 && !(this.appendable && i === this.orderCount - 1)) {
          this.eraseSegment(sector);
          continue;
        }
      }
      i++;
    }
    return purged;
  }

  /** Programs the next free ack slot of `sector`; false when none is left or it failed. */
  private writeAckSlot(sector: number, seq: number): boolean {
    while (this.slot[sector] < this.ackSlots) {
      const index = this.slot[sector];
      this.slot[sector] = index + 1;
      const record = this.scratch;
      putU32(record, 0, seq);
      putU32(record, 4, (this.crc32(record, 0, 4) ^ this.headerCrc[sector]) >>> 0);
      const address = sector * this.sectorSize + spillHeaderBytes + index * spillAckSlotBytes;
      if (this.flash.prog(address, record, 0, spillAckSlotBytes) === flashOk) return true;
    }
    return false;
  }

  /** Retires then erases a live segment ([SPILL-4]); it leaves the order either way. */
  private eraseSegment(sector: number): void {
    const isNewest = this.orderCount > 0 && this.order[this.orderCount - 1] === sector;
    this.removeFromOrder(sector);
    if (isNewest) this.appendable = false;
    this.retire(sector);
    if (this.flash.erase(sector) === flashOk) {
      this.state[sector] = sectorErased;
      this.segmentsErased++;
    } else {
      this.state[sector] = sectorBad;
    }
  }

  /** Programs the retire word of a segment's header ([SPILL-4]). */
  private retire(sector: number): void {
    const word = this.scratch;
    putU32(word, 0, (this.headerCrc[sector] ^ retireMask) >>> 0);
    this.flash.prog(sector * this.sectorSize + headerRetireAt, word, 0, 4);
  }

  /** Whether every byte of `sector` reads 0xFF (read in scratch-sized steps). */
  private isErased(sector: number): boolean {
    const scratch = this.scratch;
    const base = sector * this.sectorSize;
    for (let done = 0; done < this.sectorSize; done += scratch.length) {
      const step = this.sectorSize - done < scratch.length ? this.sectorSize - done : scratch.length;
      if (this.flash.read(base + done, scratch, 0, step) !== flashOk) return false;
      for (let i = 0; i < step; i++) if (scratch[i] !== 0xff) return false;
    }
    return true;
  }

  /** Area full under drop-oldest: the oldest segment goes, its unacknowledged events counted. */
  private dropOldestSegment(): void {
    const sector = this.order[0];
    this.countDropped(this.unackedIn(sector));
    this.eraseSegment(sector);
  }

  /** Adds to the drops takeDropped hands out (saturating, as the cache's own count). */
  private countDropped(lost: number): void {
    this.dropped = this.dropped + lost > 0xffffffff ? 0xffffffff : this.dropped + lost;
  }

  /**
   * Opens a new segment for the chunk buffer in the next free sector (round robin, so wear is
   * even). Returns spillOk, spillErrorFull (no free sector) or spillErrorFlash (none usable).
   */
  private openSegment(): number {
    let free = 0;
    for (let step = 1; step <= this.sectorCount; step++) {
      const sector = (this.lastOpened + step) % this.sectorCount;
      const state = this.state[sector];
      if (state === sectorLive || state === sectorBad) continue;
      free++;
      // A sector not known to be erased is read first: erasing an already erased sector on
      // every boot would cost one erase per sector per boot.
      if (state !== sectorErased && !this.isErased(sector) && this.flash.erase(sector) !== flashOk) {
        this.state[sector] = sectorBad;
        continue;
      }
      this.state[sector] = sectorDirty;
      const header = this.scratch;
      header[0] = magic0;
      header[1] = magic1;
      header[2] = magic2;
      header[3] = format;
      putU32(header, 4, this.nextNumber);
      putU32(header, 8, this.epoch);
      putU32(header, 12, this.chunkFirstSeq);
      putU32(header, headerTemplatesCrcAt, this.templatesCrc);
      const crc = this.crc32(header, 0, headerCrcAt);
      putU32(header, headerCrcAt, crc);
      this.lastOpened = sector;
      // The retire word stays erased: programmed only when the segment is retired.
      if (this.flash.prog(sector * this.sectorSize, header, 0, headerRetireAt) !== flashOk) {
        this.state[sector] = sectorBad;
        continue;
      }
      this.number[sector] = this.nextNumber;
      this.nextNumber++;
      this.epochOf[sector] = this.epoch;
      this.first[sector] = this.chunkFirstSeq;
      this.stored[sector] = 0;
      this.acked[sector] = this.chunkFirstSeq - 1;
      this.writeAt[sector] = this.dataStart;
      this.slot[sector] = 0;
      this.headerCrc[sector] = crc;
      this.state[sector] = sectorLive;
      this.order[this.orderCount++] = sector;
      this.appendable = true;
      this.segmentsOpened++;
      return spillOk;
    }
    return free > 0 ? spillErrorFlash : spillErrorFull;
  }
}

/** What the device calls: a flash tier over `flash`, to mount(epoch) and attach to the cache. */
export function createEventSpill(flash: Flash, options: EventSpillOptions): EventSpill {
  return new EventSpill(flash, options);
}
