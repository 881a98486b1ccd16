// Model-based test (fast-check) of the event spill tier against an in-memory reference: random
// sequences of stores, flushes, ticks, acks of the current epoch and of the backlog, and reboots
// (each a new boot epoch). After every step the tier holds exactly what the reference holds
// [SPILL-2] [SPILL-3] [SPILL-6].
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EventSpill, spillOk } from '../../firmware/core/event-spill.ts';
import { FlashSimulator } from '../../hal-mocks/flash-simulator.ts';
import { eventBytes, hex, newSpill, readAll, smallOptions } from './event-spill-helpers.ts';

type Command =
  | { kind: 'store'; count: number }
  | { kind: 'flush' }
  | { kind: 'tick'; ms: number }
  | { kind: 'ack'; fraction: number }
  | { kind: 'ackBacklog'; fraction: number }
  | { kind: 'reboot' };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('store' as const), count: fc.integer({ min: 1, max: 12 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'flush' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ack' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('ackBacklog' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reboot' as const }) },
);

/** The reference: per epoch, the unacknowledged seqs, oldest first. */
class Reference {
  epochs = new Map<number, number[]>();
  epoch = 1;
  nextSeq = 1;

  current(): number[] {
    let seqs = this.epochs.get(this.epoch);
    if (seqs === undefined) {
      seqs = [];
      this.epochs.set(this.epoch, seqs);
    }
    return seqs;
  }

  backlogEpoch(): number {
    const epochs = [...this.epochs.keys()].filter((epoch) => epoch !== this.epoch && this.epochs.get(epoch)!.length > 0).sort((a, b) => a - b);
    return epochs.length > 0 ? epochs[0] : 0;
  }

  ack(epoch: number, seq: number): void {
    this.epochs.set(epoch, (this.epochs.get(epoch) ?? []).filter((s) => s > seq));
  }
}

function lines(epoch: number, seqs: number[]): string[] {
  return seqs.map((seq) => `${seq}:${hex(eventBytes(epoch, seq))}`);
}

function check(spill: EventSpill, reference: Reference, step: number): void {
  const current = reference.current();
  expect(spill.count(), `step ${step}: count`).toBe(current.length);
  expect(spill.oldestSeq(), `step ${step}: oldest`).toBe(current.length > 0 ? current[0] : 0);
  expect(spill.newestSeq(), `step ${step}: newest`).toBe(current.length > 0 ? current[current.length - 1] : 0);
  expect(readAll((a, i, o, m, b) => spill.readBatch(a, i, o, m, b), 300), `step ${step}: current events`).toEqual(lines(reference.epoch, current));
  const backlog = reference.backlogEpoch();
  expect(spill.backlogEpoch(), `step ${step}: backlog epoch`).toBe(backlog);
  if (backlog !== 0) {
    const seqs = reference.epochs.get(backlog)!;
    expect(spill.backlogCount(), `step ${step}: backlog count`).toBe(seqs.length);
    expect(readAll((a, i, o, m, b) => spill.readBacklog(a, i, o, m, b), 300), `step ${step}: backlog events`).toEqual(lines(backlog, seqs));
  }
}

describe('event spill: model-based against an in-memory reference', () => {
  it('random stores, flushes, ticks, acks and reboots keep the tier equal to the reference', () => {
    fc.assert(
      fc.property(fc.array(command, { minLength: 1, maxLength: 60 }), (commands) => {
        // Room for everything a run can store, so no drop makes the reference guess.
        const flash = new FlashSimulator({ sectorSize: 1024, sectorCount: 64 });
        const reference = new Reference();
        let spill = newSpill(flash, smallOptions());
        spill.mount(reference.epoch);
        let nowMs = 0;
        commands.forEach((step, index) => {
          if (step.kind === 'store') {
            for (let i = 0; i < step.count; i++) {
              const seq = reference.nextSeq++;
              const data = eventBytes(reference.epoch, seq);
              expect(spill.store(seq, data, 0, data.length)).toBe(true);
              reference.current().push(seq);
            }
          } else if (step.kind === 'flush') {
            expect(spill.flush()).toBe(spillOk);
          } else if (step.kind === 'tick') {
            nowMs += step.ms;
            expect(spill.tick(nowMs)).toBe(spillOk);
          } else if (step.kind === 'ack') {
            const seqs = reference.current();
            const seq = seqs.length === 0 ? reference.nextSeq - 1 : seqs[Math.min(seqs.length - 1, Math.floor(step.fraction * seqs.length))];
            const expected = seqs.filter((s) => s <= seq).length;
            expect(spill.ack(seq)).toBe(expected);
            reference.ack(reference.epoch, seq);
          } else if (step.kind === 'ackBacklog') {
            const epoch = reference.backlogEpoch();
            if (epoch !== 0) {
              const seqs = reference.epochs.get(epoch)!;
              const seq = seqs[Math.min(seqs.length - 1, Math.floor(step.fraction * seqs.length))];
              expect(spill.ackBacklog(epoch, seq)).toBe(seqs.filter((s) => s <= seq).length);
              reference.ack(epoch, seq);
            }
          } else {
            // A reboot loses what was still in the chunk buffer: the newest events of the epoch.
            const pending = spill.pendingCount();
            const current = reference.current();
            current.splice(current.length - pending, pending);
            expect(spill.acksNotPersisted).toBe(0);
            reference.epoch++;
            reference.nextSeq = 1;
            spill = newSpill(flash, smallOptions());
            const total = [...reference.epochs.values()].reduce((sum, seqs) => sum + seqs.length, 0);
            expect(spill.mount(reference.epoch)).toBe(total);
          }
          expect(spill.takeDropped()).toBe(0);
          check(spill, reference, index);
        });
      }),
      { numRuns: 150, seed: 20261127 },
    );
  });
});
