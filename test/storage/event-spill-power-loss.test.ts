// Power loss as an ordinary input for the event spill tier: a seeded workload (store, chunk
// flushes, acks, segment erases, drop-oldest overflow) rerun with the power cut at every flash
// operation, then with every operation torn. After each remount every event acknowledged before
// the operation in flight is gone, every event durable before and after it is there exactly once
// with its bytes, nothing else appears, and the tier takes events again
// [SPILL-1] [SPILL-2] [SPILL-3] [SPILL-4] [SPILL-5].
import { describe, expect, it } from 'vitest';
import { type EventSpill, type EventSpillOptions, spillOk } from '../../firmware/core/event-spill.ts';
import { FlashSimulator, PowerLoss, seededRandom, type TearMode } from '../../hal-mocks/flash-simulator.ts';
import { eventBytes, fullSnapshot, newSpill, smallOptions } from './event-spill-helpers.ts';

type Operation = { kind: 'store'; seq: number } | { kind: 'flush' } | { kind: 'tick'; nowMs: number } | { kind: 'ack'; seq: number };

interface Setup {
  name: string;
  sectorSize: number;
  sectorCount: number;
  operations: number;
  seed: number;
  options: EventSpillOptions;
}

const setups: Setup[] = [
  { name: '6 sectors of 1 KiB, 256-byte chunks, drop-oldest overflow', sectorSize: 1024, sectorCount: 6, operations: 400, seed: 3, options: smallOptions() },
  { name: 'write-through (flushDelayMs 0), 4 sectors of 1 KiB', sectorSize: 1024, sectorCount: 4, operations: 300, seed: 5, options: smallOptions({ flushDelayMs: 0 }) },
];

function apply(spill: EventSpill, operation: Operation): void {
  if (operation.kind === 'store') {
    const data = eventBytes(1, operation.seq);
    spill.store(operation.seq, data, 0, data.length);
  } else if (operation.kind === 'flush') {
    expect(spill.flush()).toBe(spillOk);
  } else if (operation.kind === 'tick') {
    expect(spill.tick(operation.nowMs)).toBe(spillOk);
  } else {
    spill.ack(operation.seq);
  }
}

/** A seeded workload generated against a fault-free tier; durable[k] is what a remount finds after k operations. */
function workload(setup: Setup, makeFlash: () => FlashSimulator): { operations: Operation[]; durable: string[][]; dropped: number; flashOperations: number } {
  const random = seededRandom(setup.seed);
  const flash = makeFlash();
  const spill = newSpill(flash, setup.options);
  spill.mount(1);
  const operations: Operation[] = [];
  const durable: string[][] = [[]];
  let seq = 1;
  let nowMs = 0;
  let dropped = 0;
  // The reference, independent of the tier's own remount: the seqs that reached flash, minus the
  // acknowledged ones, minus the oldest ones dropped when the area was full.
  let model: number[] = [];
  let flushedThrough = 0;
  let ackedThrough = 0;
  for (let i = 0; i < setup.operations; i++) {
    const choice = random();
    let operation: Operation;
    if (choice < 0.78) operation = { kind: 'store', seq: seq++ };
    else if (choice < 0.86) operation = { kind: 'tick', nowMs: (nowMs += Math.floor(random() * 3)) };
    else if (choice < 0.89) operation = { kind: 'flush' };
    else {
      const oldest = spill.oldestSeq();
      const newest = spill.newestSeq();
      operation = { kind: 'ack', seq: oldest === 0 ? seq - 1 : oldest + Math.floor(random() * (newest - oldest + 1) * 0.15) };
    }
    apply(spill, operation);
    const droppedNow = spill.takeDropped();
    dropped += droppedNow;
    model = model.slice(droppedNow);
    if (operation.kind === 'ack' && operation.seq > ackedThrough) ackedThrough = operation.seq;
    const newestFlushed = seq - 1 - spill.pendingCount();
    for (let s = flushedThrough + 1; s <= newestFlushed; s++) if (s > ackedThrough) model.push(s);
    if (newestFlushed > flushedThrough) flushedThrough = newestFlushed;
    model = model.filter((s) => s > ackedThrough);
    operations.push(operation);
    const expected = model.map((s) => `e1/${s}:${Buffer.from(eventBytes(1, s)).toString('hex')}`);
    // The tier's own remount agrees with the reference after every operation.
    const remounted = fullSnapshot(flash, makeFlash, setup.options, 99);
    if (remounted.join() !== expected.join()) throw new Error(`operation ${i} (${operation.kind}): remount finds ${remounted.length} events, the reference ${expected.length}`);
    durable.push(expected);
  }
  return { operations, durable, dropped, flashOperations: flash.operations };
}

type Fault = { kind: 'cut' } | { kind: 'tear'; mode: TearMode };

/** Runs the workload with one fault at flash operation `at`; returns the index of the operation in flight. */
function runWithFault(flash: FlashSimulator, setup: Setup, operations: Operation[], at: number, fault: Fault): number {
  if (fault.kind === 'cut') flash.cutPowerAfter(at);
  else flash.tearOperation(at, fault.mode);
  let inFlight = 0;
  try {
    const spill = newSpill(flash, setup.options);
    spill.mount(1);
    for (inFlight = 0; inFlight < operations.length; inFlight++) apply(spill, operations[inFlight]);
    return operations.length;
  } catch (error) {
    if (!(error instanceof PowerLoss)) throw error;
    return inFlight;
  }
}

function checkRemount(flash: FlashSimulator, setup: Setup, makeFlash: () => FlashSimulator, durable: string[][], inFlight: number, label: string): void {
  flash.restorePower();
  const found = fullSnapshot(flash, makeFlash, setup.options, 2);
  const before = new Set(durable[inFlight]);
  const after = new Set(durable[Math.min(inFlight + 1, durable.length - 1)]);
  const seen = new Set<string>();
  for (const event of found) {
    const seq = event.split(':')[0];
    if (seen.has(seq)) expect.fail(`${label}: event ${seq} found twice`);
    seen.add(seq);
    if (!before.has(event) && !after.has(event)) expect.fail(`${label}: ${event.slice(0, 40)} was neither durable before nor after operation ${inFlight}`);
  }
  const foundSet = new Set(found);
  for (const event of before) {
    if (after.has(event) && !foundSet.has(event)) expect.fail(`${label}: ${event.slice(0, 40)}, durable before and after operation ${inFlight}, is lost`);
  }
  // Oldest first, in seq order.
  const seqs = found.map((event) => Number(event.split(':')[0].split('/')[1]));
  for (let i = 1; i < seqs.length; i++) expect(seqs[i], `${label}: order`).toBeGreaterThan(seqs[i - 1]);

  // The tier takes events of the new boot epoch, and they survive another reboot after the backlog.
  const spill = newSpill(flash, setup.options);
  spill.mount(2);
  expect(spill.backlogEpoch(), label).toBe(found.length > 0 ? 1 : 0);
  for (let seq = 1; seq <= 5; seq++) {
    const data = eventBytes(2, seq);
    expect(spill.store(seq, data, 0, data.length), `${label}: store after remount`).toBe(true);
  }
  expect(spill.flush(), label).toBe(spillOk);
  const fresh = [1, 2, 3, 4, 5].map((seq) => `e2/${seq}:${Buffer.from(eventBytes(2, seq)).toString('hex')}`);
  const again = fullSnapshot(flash, makeFlash, setup.options, 3);
  // A full area under drop-oldest may give up backlog segments for the new events (counted).
  const kept = found.filter((event) => again.includes(event));
  expect(again, `${label}: after a second reboot`).toEqual([...kept, ...fresh]);
  expect(kept.length + spill.takeDropped(), `${label}: backlog kept or counted as dropped`).toBeGreaterThanOrEqual(found.length);
}

describe.each(setups)('event spill power loss: $name', (setup) => {
  const makeFlash = () => new FlashSimulator({ sectorSize: setup.sectorSize, sectorCount: setup.sectorCount, seed: setup.seed });
  const { operations, durable, dropped, flashOperations } = workload(setup, makeFlash);

  it(`the workload stores, flushes, acks, erases and overflows (${operations.length} operations, ${flashOperations} flash operations)`, () => {
    expect(operations.length).toBeGreaterThanOrEqual(200);
    expect(new Set(operations.map((operation) => operation.kind)).size).toBe(4);
    expect(dropped, 'drop-oldest overflow happens').toBeGreaterThan(0);
    expect(flashOperations).toBeGreaterThan(100);
    // Some acknowledged events were durable and are gone after a reboot.
    const everDurable = new Set(durable.flat());
    expect(everDurable.size).toBeGreaterThan(durable[durable.length - 1].length);
  });

  it('power cut after every flash operation: acknowledged gone, unacknowledged there once, then writable', () => {
    for (let at = 0; at <= flashOperations; at++) {
      const flash = makeFlash();
      const inFlight = runWithFault(flash, setup, operations, at, { kind: 'cut' });
      checkRemount(flash, setup, makeFlash, durable, Math.min(inFlight, operations.length - 1), `cut at ${at}`);
    }
  });

  it.each(['untouched', 'random'] as const)('every flash operation torn (rest %s)', (mode) => {
    for (let at = 0; at < flashOperations; at++) {
      const flash = new FlashSimulator({ sectorSize: setup.sectorSize, sectorCount: setup.sectorCount, seed: setup.seed * 1000 + at });
      const inFlight = runWithFault(flash, setup, operations, at, { kind: 'tear', mode });
      expect(inFlight, `tear at ${at} must interrupt the run`).toBeLessThan(operations.length);
      checkRemount(flash, setup, makeFlash, durable, inFlight, `tear (${mode}) at ${at}`);
    }
  });
});
