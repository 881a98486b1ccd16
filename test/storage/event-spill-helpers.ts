// Shared pieces of the event spill tests: a small geometry that rotates segments often, seeded
// event bytes, and a snapshot of every event a tier holds (backlog and current epoch).
import { overflowDropOldest, type EventBatch } from '../../firmware/core/event-cache.ts';
import { EventSpill, eventSpillDefaults, type EventSpillOptions } from '../../firmware/core/event-spill.ts';
import type { Flash } from '../../firmware/hal/flash.ts';
import { crc32 } from '../../firmware/protocol/crc32.ts';

/** 1 KiB sectors, 4 ack slots, 256-byte chunks: many segments, ack slots run out, chunks fill. */
export function smallOptions(overrides: Partial<EventSpillOptions> = {}): EventSpillOptions {
  return { ...eventSpillDefaults(crc32), overflowPolicy: overflowDropOldest, flushDelayMs: 1, chunkBytes: 256, ackSlots: 4, recordBytesMax: 200, ...overrides };
}

export function newSpill(flash: Flash, options: EventSpillOptions = smallOptions()): EventSpill {
  return new EventSpill(flash, options);
}

/** The bytes of event `seq` of `epoch`: length and content derived from both, so any mix-up shows. */
export function eventBytes(epoch: number, seq: number): Uint8Array {
  const mix = (Math.imul(seq, 2654435761) ^ Math.imul(epoch, 40503)) >>> 0;
  // Mostly short events, some over 127 bytes (two-byte length prefix), none empty.
  const length = mix % 13 === 0 ? 128 + (mix % 60) : 1 + (mix % 40);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (mix >>> (i % 24)) + i * 7 + epoch;
  return bytes;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Parses a batch buffer into its events. */
export function parseBatch(buffer: Uint8Array, bytes: number, batch: EventBatch): { seq: number; data: Uint8Array }[] {
  const events: { seq: number; data: Uint8Array }[] = [];
  let at = 0;
  for (let i = 0; i < batch.count; i++) {
    const length = buffer[at] | (buffer[at + 1] << 8);
    events.push({ seq: batch.firstSeq + i, data: buffer.slice(at + 2, at + 2 + length) });
    at += 2 + length;
  }
  if (at !== bytes) throw new Error(`batch of ${batch.count} events spans ${at} bytes, reported ${bytes}`);
  return events;
}

export type Reader = (afterSeq: number, into: Uint8Array, offset: number, maxBytes: number, batch: EventBatch) => number;

/** Every event a reader yields, in batches of at most `maxBytes`, as "seq:hex" strings. */
export function readAll(read: Reader, maxBytes = 960): string[] {
  const buffer = new Uint8Array(maxBytes);
  const out: string[] = [];
  let after = 0;
  // Bounded: each round must make progress.
  for (let round = 0; round < 100000; round++) {
    const batch: EventBatch = { firstSeq: 0, count: 0, bytes: 0 };
    const bytes = read(after, buffer, 0, maxBytes, batch);
    if (batch.count === 0) return out;
    for (const event of parseBatch(buffer, bytes, batch)) out.push(`${event.seq}:${hex(event.data)}`);
    after = batch.firstSeq + batch.count - 1;
  }
  throw new Error('readAll made no progress');
}

/** Everything a tier holds: "e<epoch>/<seq>:<hex>" for the backlog epoch and the current one. */
export function snapshot(spill: EventSpill): string[] {
  const out: string[] = [];
  const backlog = spill.backlogEpoch();
  if (backlog !== 0) for (const event of readAll((a, i, o, m, b) => spill.readBacklog(a, i, o, m, b))) out.push(`e${backlog}/${event}`);
  for (const event of readAll((a, i, o, m, b) => spill.readBatch(a, i, o, m, b))) out.push(`e${spill.currentEpoch()}/${event}`);
  return out;
}

/** Every event of every epoch: acknowledges nothing, reads the backlog epochs one by one on a copy. */
export function fullSnapshot(flash: { bytes: Uint8Array }, makeFlash: () => Flash & { bytes: Uint8Array }, options: EventSpillOptions, epoch: number): string[] {
  const copy = makeFlash();
  copy.bytes.set(flash.bytes);
  const spill = newSpill(copy, options);
  spill.mount(epoch);
  const out: string[] = [];
  for (let guard = 0; guard < 1000; guard++) {
    const backlog = spill.backlogEpoch();
    if (backlog === 0) break;
    const events = readAll((a, i, o, m, b) => spill.readBacklog(a, i, o, m, b));
    for (const event of events) out.push(`e${backlog}/${event}`);
    const last = events.length > 0 ? Number(events[events.length - 1].split(':')[0]) : 0;
    if (spill.ackBacklog(backlog, last) === 0) throw new Error('backlog epoch did not drain');
  }
  for (const event of readAll((a, i, o, m, b) => spill.readBatch(a, i, o, m, b))) out.push(`e${spill.currentEpoch()}/${event}`);
  return out;
}
