// One contract for the HAL `Flash`, run against every implementation (MQTT.js `abstract_store`):
// the flash simulator and the Storage-backed Flash over the sandbox's Espruino Storage.
import { describe, expect, it } from 'vitest';
import { flashErrorNotErased, flashErrorRange, flashOk, type Flash } from '../../firmware/hal/flash.ts';
import { seededRandom } from '../../hal-mocks/flash-simulator.ts';

export interface FlashUnderTest {
  flash: Flash;
  /** A new Flash over the same bytes (a reboot). */
  reopen(): Flash;
}

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function readAll(flash: Flash, address: number, length: number): Uint8Array {
  const into = new Uint8Array(length);
  expect(flash.read(address, into, 0, length)).toBe(flashOk);
  return into;
}

export function flashContract(name: string, create: () => FlashUnderTest): void {
  describe(`Flash contract: ${name}`, () => {
    it('has a positive geometry and an erased sector reads as 0xFF', () => {
      const { flash } = create();
      expect(flash.sectorSize).toBeGreaterThan(16);
      expect(flash.sectorCount).toBeGreaterThanOrEqual(2);
      expect(flash.erase(1)).toBe(flashOk);
      expect(readAll(flash, flash.sectorSize, flash.sectorSize).every((byte) => byte === 0xff)).toBe(true);
    });

    it('programs erased bytes and reads them back, and the bytes survive a reopen', () => {
      const under = create();
      const { flash } = under;
      expect(flash.erase(0)).toBe(flashOk);
      expect(flash.prog(5, bytes(1, 2, 3, 4, 9), 1, 3)).toBe(flashOk);
      expect(Array.from(readAll(flash, 4, 5))).toEqual([0xff, 2, 3, 4, 0xff]);
      expect(Array.from(readAll(under.reopen(), 4, 5))).toEqual([0xff, 2, 3, 4, 0xff]);
    });

    it('accepts programming identical bytes again and refuses any byte that differs [FLASH-2]', () => {
      const { flash } = create();
      expect(flash.erase(0)).toBe(flashOk);
      expect(flash.prog(10, bytes(0xf0, 0x0f), 0, 2)).toBe(flashOk);
      expect(flash.prog(10, bytes(0xf0, 0x0f), 0, 2)).toBe(flashOk);
      // Each needs a 0 -> 1 flip (writing 0xFF over a programmed byte is no way back to erased).
      expect(flash.prog(10, bytes(0xff, 0x0f), 0, 2)).toBe(flashErrorNotErased);
      expect(flash.prog(10, bytes(0xf1, 0x0f), 0, 2)).toBe(flashErrorNotErased);
      // Only clears bits: real NOR could, Espruino's Storage cannot, so neither may.
      expect(flash.prog(11, bytes(0x0e), 0, 1)).toBe(flashErrorNotErased);
      // A refused program changes nothing, also where its other bytes were erased.
      expect(flash.prog(9, bytes(0x55, 0x00), 0, 2)).toBe(flashErrorNotErased);
      expect(Array.from(readAll(flash, 9, 3))).toEqual([0xff, 0xf0, 0x0f]);
    });

    it('programs the first bytes of a sector after later ones without losing them', () => {
      const { flash } = create();
      const start = flash.sectorSize;
      expect(flash.erase(1)).toBe(flashOk);
      expect(flash.prog(start + 100, bytes(7, 7), 0, 2)).toBe(flashOk);
      expect(flash.prog(start, bytes(1, 2, 3), 0, 3)).toBe(flashOk);
      expect(Array.from(readAll(flash, start, 3))).toEqual([1, 2, 3]);
      expect(Array.from(readAll(flash, start + 100, 2))).toEqual([7, 7]);
    });

    it('erases one sector only', () => {
      const { flash } = create();
      expect(flash.erase(0)).toBe(flashOk);
      expect(flash.erase(1)).toBe(flashOk);
      expect(flash.prog(0, bytes(1), 0, 1)).toBe(flashOk);
      expect(flash.prog(flash.sectorSize, bytes(2), 0, 1)).toBe(flashOk);
      expect(flash.erase(0)).toBe(flashOk);
      expect(readAll(flash, 0, 1)[0]).toBe(0xff);
      expect(readAll(flash, flash.sectorSize, 1)[0]).toBe(2);
      expect(flash.prog(0, bytes(3), 0, 1)).toBe(flashOk);
      expect(readAll(flash, 0, 1)[0]).toBe(3);
    });

    it('reads and programs across a sector boundary', () => {
      const { flash } = create();
      expect(flash.erase(0)).toBe(flashOk);
      expect(flash.erase(1)).toBe(flashOk);
      const address = flash.sectorSize - 2;
      expect(flash.prog(address, bytes(1, 2, 3, 4), 0, 4)).toBe(flashOk);
      expect(Array.from(readAll(flash, address, 4))).toEqual([1, 2, 3, 4]);
    });

    it('returns flashErrorRange outside the area and changes nothing', () => {
      const { flash } = create();
      const size = flash.sectorSize * flash.sectorCount;
      const into = new Uint8Array(4);
      expect(flash.read(size - 2, into, 0, 4)).toBe(flashErrorRange);
      expect(flash.read(-1, into, 0, 1)).toBe(flashErrorRange);
      expect(flash.read(0, into, 2, 4)).toBe(flashErrorRange);
      expect(flash.prog(size - 1, bytes(1, 2), 0, 2)).toBe(flashErrorRange);
      expect(flash.prog(0, bytes(1, 2), 1, 2)).toBe(flashErrorRange);
      expect(flash.erase(-1)).toBe(flashErrorRange);
      expect(flash.erase(flash.sectorCount)).toBe(flashErrorRange);
    });

    it('agrees with a byte model over a seeded run of programs, erases and reopens', () => {
      const under = create();
      let flash = under.flash;
      const size = flash.sectorSize * flash.sectorCount;
      for (let sector = 0; sector < flash.sectorCount; sector++) expect(flash.erase(sector)).toBe(flashOk);
      const model = new Uint8Array(size).fill(0xff);
      const random = seededRandom(42);
      const data = new Uint8Array(64);
      for (let step = 0; step < 300; step++) {
        const choice = random();
        if (choice < 0.05) {
          const sector = Math.floor(random() * flash.sectorCount);
          expect(flash.erase(sector)).toBe(flashOk);
          model.fill(0xff, sector * flash.sectorSize, (sector + 1) * flash.sectorSize);
        } else if (choice < 0.08) {
          flash = under.reopen();
        } else {
          const length = 1 + Math.floor(random() * 40);
          const address = Math.floor(random() * (size - length));
          for (let i = 0; i < length; i++) data[i] = random() < 0.2 ? model[address + i] : Math.floor(random() * 256);
          let allowed = true;
          for (let i = 0; i < length; i++) if (model[address + i] !== 0xff && model[address + i] !== data[i]) allowed = false;
          expect(flash.prog(address, data, 0, length)).toBe(allowed ? flashOk : flashErrorNotErased);
          if (allowed) model.set(data.subarray(0, length), address);
        }
        if (step % 25 === 0) expect(readAll(flash, 0, size)).toEqual(model);
      }
      expect(readAll(flash, 0, size)).toEqual(model);
    });
  });
}
