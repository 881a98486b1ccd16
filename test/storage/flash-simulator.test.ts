// The flash simulator's fault model itself: power cuts, torn programs and erases, wear-out and the
// counters the benchmarks read. The store's tests rely on these behaving as documented.
import { describe, expect, it } from 'vitest';
import { flashErrorNotErased, flashErrorWorn, flashOk } from '../../firmware/hal/flash.ts';
import { FlashSimulator, PowerLoss } from '../../hal-mocks/flash-simulator.ts';

const data = Uint8Array.from({ length: 64 }, (_, i) => i);

describe('FlashSimulator', () => {
  it('starts erased, counts programs and erases per sector and in bytes', () => {
    const flash = new FlashSimulator({ sectorCount: 2, sectorSize: 256 });
    expect(flash.bytes.every((byte) => byte === 0xff)).toBe(true);
    expect(flash.prog(10, data, 0, 20)).toBe(flashOk);
    expect(flash.prog(250, data, 0, 10)).toBe(flashOk);
    expect(flash.erase(1)).toBe(flashOk);
    expect(Array.from(flash.programCounts)).toEqual([2, 1]);
    expect(Array.from(flash.eraseCounts)).toEqual([0, 1]);
    expect(flash.bytesProgrammed).toBe(30);
    expect(flash.bytesErased).toBe(256);
    expect(flash.operations).toBe(3);
    expect(flash.maxEraseCount()).toBe(1);
  });

  it('cutPowerAfter(n): n operations complete, the next throws PowerLoss and changes nothing, and so does every call until power returns', () => {
    const flash = new FlashSimulator({ sectorCount: 1, sectorSize: 256 });
    flash.cutPowerAfter(2);
    expect(flash.prog(0, data, 0, 4)).toBe(flashOk);
    expect(flash.prog(4, data, 0, 4)).toBe(flashOk);
    expect(() => flash.prog(8, data, 0, 4)).toThrow(PowerLoss);
    expect(flash.bytes[8]).toBe(0xff);
    expect(flash.isPowered).toBe(false);
    expect(() => flash.read(0, new Uint8Array(1), 0, 1)).toThrow(PowerLoss);
    expect(() => flash.erase(0)).toThrow(PowerLoss);
    flash.restorePower();
    expect(flash.prog(8, data, 0, 4)).toBe(flashOk);
    expect(Array.from(flash.bytes.subarray(0, 12))).toEqual([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
  });

  it('a torn program writes a prefix; the rest stays (untouched) or gets random cleared bits (random)', () => {
    let sawPartial = false;
    for (let seed = 1; seed <= 20; seed++) {
      const flash = new FlashSimulator({ sectorCount: 1, sectorSize: 256, seed });
      flash.tearOperation(0, 'untouched');
      expect(() => flash.prog(0, data, 0, 64)).toThrow(PowerLoss);
      const written = flash.bytes.findIndex((byte, i) => i < 64 && byte !== data[i]);
      const prefix = written === -1 ? 64 : written;
      expect(prefix).toBeLessThan(64);
      expect(flash.bytes.subarray(prefix, 256).every((byte) => byte === 0xff)).toBe(true);
      if (prefix > 0) sawPartial = true;

      const noisy = new FlashSimulator({ sectorCount: 1, sectorSize: 256, seed });
      noisy.tearOperation(0, 'random');
      expect(() => noisy.prog(0, data, 0, 64)).toThrow(PowerLoss);
      expect(noisy.bytes.subarray(64, 256).every((byte) => byte === 0xff)).toBe(true);
    }
    expect(sawPartial).toBe(true);
  });

  it('a torn erase leaves part of the sector as it was (untouched) or scrambled (random)', () => {
    const flash = new FlashSimulator({ sectorCount: 2, sectorSize: 256, seed: 5 });
    flash.bytes.fill(0);
    flash.tearOperation(0, 'untouched');
    expect(() => flash.erase(0)).toThrow(PowerLoss);
    const erased = flash.bytes.subarray(0, 256).filter((byte) => byte === 0xff).length;
    expect(erased).toBeLessThan(256);
    expect(flash.bytes.subarray(256).every((byte) => byte === 0)).toBe(true);
  });

  it('refuses to program a byte that is neither erased nor equal, all or nothing', () => {
    const flash = new FlashSimulator({ sectorCount: 1, sectorSize: 256 });
    expect(flash.prog(0, Uint8Array.from([0x0f]), 0, 1)).toBe(flashOk);
    expect(flash.prog(0, Uint8Array.from([0x0f, 1]), 0, 2)).toBe(flashOk);
    expect(flash.prog(0, Uint8Array.from([0x07, 2, 3]), 0, 3)).toBe(flashErrorNotErased);
    expect(Array.from(flash.bytes.subarray(0, 3))).toEqual([0x0f, 1, 0xff]);
  });

  it('wears a sector out after its erase budget: erases then programs fail, contents stay readable', () => {
    const flash = new FlashSimulator({ sectorCount: 2, sectorSize: 256 });
    flash.wearOut(0, 2);
    expect(flash.erase(0)).toBe(flashOk);
    expect(flash.erase(0)).toBe(flashOk);
    expect(flash.prog(0, data, 0, 4)).toBe(flashOk);
    expect(flash.erase(0)).toBe(flashErrorWorn);
    expect(flash.prog(4, data, 0, 4)).toBe(flashErrorWorn);
    const into = new Uint8Array(4);
    expect(flash.read(0, into, 0, 4)).toBe(flashOk);
    expect(Array.from(into)).toEqual([0, 1, 2, 3]);
    expect(flash.erase(1)).toBe(flashOk);
    const worn = new FlashSimulator({ sectorCount: 1, sectorSize: 256, eraseCyclesMax: 0 });
    expect(worn.erase(0)).toBe(flashErrorWorn);
  });
});
