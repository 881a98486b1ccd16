// Booting the event spill tier from random or corrupted flash never throws or hangs, never invents
// an event, and leaves a tier that takes events which survive the next reboot [SPILL-5].
import { describe, expect, it } from 'vitest';
import { spillOk } from '../../firmware/core/event-spill.ts';
import { FlashSimulator, seededRandom } from '../../hal-mocks/flash-simulator.ts';
import { eventBytes, fullSnapshot, hex, newSpill, smallOptions, snapshot } from './event-spill-helpers.ts';

const makeFlash = () => new FlashSimulator({ sectorSize: 1024, sectorCount: 6 });

function usable(flash: FlashSimulator, label: string): void {
  const spill = newSpill(flash);
  spill.mount(50);
  const before = fullSnapshot(flash, makeFlash, smallOptions(), 60);
  for (let seq = 1; seq <= 30; seq++) {
    const data = eventBytes(50, seq);
    expect(spill.store(seq, data, 0, data.length), label).toBe(true);
  }
  expect(spill.flush(), label).toBe(spillOk);
  const after = fullSnapshot(flash, makeFlash, smallOptions(), 60);
  const fresh = Array.from({ length: 30 }, (_, i) => `e50/${i + 1}:${hex(eventBytes(50, i + 1))}`);
  // New events are all there, after whatever survived of the old contents (some may be dropped for room).
  expect(after.slice(after.length - 30), label).toEqual(fresh);
  for (const event of after.slice(0, after.length - 30)) expect(before, label).toContain(event);
}

describe('event spill: booting from random or corrupted flash', () => {
  it('random flash contents: mount never throws and finds nothing', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const flash = makeFlash();
      flash.fillRandom(seed);
      const spill = newSpill(flash);
      expect(spill.mount(1), `seed ${seed}`).toBe(0);
      expect(snapshot(spill)).toEqual([]);
      usable(flash, `seed ${seed}`);
    }
  });

  it('a real image with random bytes corrupted: only original events come back, each with its bytes', () => {
    const original = makeFlash();
    const spill = newSpill(original);
    spill.mount(1);
    for (let seq = 1; seq <= 150; seq++) {
      const data = eventBytes(1, seq);
      spill.store(seq, data, 0, data.length);
    }
    spill.ack(40);
    spill.flush();
    const all = fullSnapshot(original, makeFlash, smallOptions(), 2);
    expect(all.length).toBeGreaterThan(50);
    const random = seededRandom(99);
    for (let round = 0; round < 300; round++) {
      const flash = makeFlash();
      flash.bytes.set(original.bytes);
      const flips = 1 + Math.floor(random() * 20);
      for (let i = 0; i < flips; i++) flash.bytes[Math.floor(random() * flash.bytes.length)] = Math.floor(random() * 256);
      const found = fullSnapshot(flash, makeFlash, smallOptions(), 2);
      const seen = new Set<string>();
      for (const event of found) {
        const seq = event.split(':')[0];
        expect(seen.has(seq), `round ${round}: ${seq} twice`).toBe(false);
        seen.add(seq);
        // A flipped ack record may bring acknowledged events back (a replay the cloud dedupes),
        // but never an event that was not stored, nor wrong bytes.
        expect(Number(seq.split('/')[1]), `round ${round}`).toBeLessThanOrEqual(150);
        expect(event, `round ${round}`).toBe(`${seq}:${hex(eventBytes(1, Number(seq.split('/')[1])))}`);
      }
      usable(flash, `round ${round}`);
    }
  });
});
