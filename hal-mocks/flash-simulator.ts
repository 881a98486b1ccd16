// A NOR flash area in RAM implementing the HAL `Flash`, with the faults a real device meets:
// power cuts, torn writes and worn-out sectors, all seeded so that every failing run replays.
//
// Fault model (littlefs `lfs_emubd`, Zephyr NVS tests):
// - Geometry: `sectorCount` sectors of `sectorSize` bytes (4096 by default, the ESP32 page).
//   A fresh area is erased (every byte 0xFF) unless filled otherwise.
// - Program: refuse-if-different, the contract of firmware/hal/flash.ts and of Espruino's Storage:
//   every target byte must be 0xFF or already hold the byte being written, else the whole call
//   returns flashErrorNotErased and changes nothing. Real NOR would AND the bits in; we model the
//   stricter rule because the Storage-backed Flash cannot do better, so code that passes here
//   never relies on clearing bits of a programmed byte.
// - Erase: sets the sector to 0xFF.
// - Power cut: `cutPowerAfter(n)` lets n more program/erase operations complete; the next one
//   does nothing and throws `PowerLoss`, and so does every call after it (reads too) until
//   `restorePower()`, as a dying device stops executing. Reads are not counted as operations.
// - Torn operation: `tearOperation(n, mode)` lets n operations complete; the next one is
//   interrupted part-way and throws `PowerLoss`. A torn program writes a seeded random prefix of
//   its bytes; with mode 'random' the rest of its range gets random bits (ANDed into the old
//   bytes, since programming only clears bits), with 'untouched' it keeps its old bytes. A torn
//   erase sets a random prefix of the sector to 0xFF and, with 'random', scrambles the rest.
// - Wear: `wearOut(sector, erases)` (or `eraseCyclesMax` for all sectors): that many erases
//   work; the next erase returns flashErrorWorn and changes nothing, and from then on so do
//   programs of that sector (its last contents stay readable).
// - Accounting: per-sector program and erase counters, total bytes programmed and erased.
import { flashErrorNotErased, flashErrorRange, flashErrorWorn, flashOk, type Flash, type FlashResult } from '../firmware/hal/flash.ts';
import { seededRandom } from './seeded-random.ts';

export { seededRandom };

/** Thrown by every flash call once power is cut: unwinds the caller as a dying device would. */
export class PowerLoss extends Error {
  constructor(readonly operation: number) {
    super(`power lost at flash operation ${operation}`);
    this.name = 'PowerLoss';
  }
}

export type TearMode = 'untouched' | 'random';

export interface FlashSimulatorOptions {
  sectorCount: number;
  /** Bytes per sector; 4096 unless given. */
  sectorSize?: number;
  /** Seed of the simulator's own randomness (torn lengths, random bytes). */
  seed?: number;
  /** Every sector wears out after this many erases (default: never). */
  eraseCyclesMax?: number;
}


export class FlashSimulator implements Flash {
  readonly sectorSize: number;
  readonly sectorCount: number;
  /** The whole area, readable by tests. */
  readonly bytes: Uint8Array;
  readonly programCounts: Uint32Array;
  readonly eraseCounts: Uint32Array;
  bytesProgrammed = 0;
  bytesErased = 0;
  /** Program and erase calls made so far (the index the next one gets). */
  operations = 0;

  private random: () => number;
  private readonly eraseLimits: Float64Array;
  private powered = true;
  private cutAt = -1;
  private tearAt = -1;
  private tearMode: TearMode = 'untouched';

  constructor(options: FlashSimulatorOptions) {
    this.sectorSize = options.sectorSize ?? 4096;
    this.sectorCount = options.sectorCount;
    if (this.sectorSize <= 0 || this.sectorCount <= 0) throw new Error('flash geometry must be positive');
    this.bytes = new Uint8Array(this.sectorSize * this.sectorCount).fill(0xff);
    this.programCounts = new Uint32Array(this.sectorCount);
    this.eraseCounts = new Uint32Array(this.sectorCount);
    this.eraseLimits = new Float64Array(this.sectorCount).fill(options.eraseCyclesMax ?? Infinity);
    this.random = seededRandom(options.seed ?? 1);
  }

  read(address: number, into: Uint8Array, intoOffset: number, length: number): FlashResult {
    this.checkPower();
    if (!this.inRange(address, length) || intoOffset < 0 || intoOffset + length > into.length) return flashErrorRange;
    into.set(this.bytes.subarray(address, address + length), intoOffset);
    return flashOk;
  }

  prog(address: number, data: Uint8Array, dataOffset: number, length: number): FlashResult {
    const operation = this.beginOperation();
    if (!this.inRange(address, length) || dataOffset < 0 || dataOffset + length > data.length) return flashErrorRange;
    if (length === 0) return flashOk;
    const firstSector = Math.floor(address / this.sectorSize);
    const lastSector = Math.floor((address + length - 1) / this.sectorSize);
    for (let sector = firstSector; sector <= lastSector; sector++) {
      if (this.isWorn(sector)) return flashErrorWorn;
    }
    for (let i = 0; i < length; i++) {
      const old = this.bytes[address + i];
      if (old !== 0xff && old !== data[dataOffset + i]) return flashErrorNotErased;
    }
    if (operation === this.tearAt) {
      const written = Math.floor(this.random() * length);
      for (let i = 0; i < written; i++) this.bytes[address + i] = data[dataOffset + i];
      if (this.tearMode === 'random') {
        for (let i = written; i < length; i++) this.bytes[address + i] &= Math.floor(this.random() * 256);
      }
      this.powerDown(operation);
    }
    this.bytes.set(data.subarray(dataOffset, dataOffset + length), address);
    for (let sector = firstSector; sector <= lastSector; sector++) this.programCounts[sector]++;
    this.bytesProgrammed += length;
    return flashOk;
  }

  erase(sector: number): FlashResult {
    const operation = this.beginOperation();
    if (!Number.isInteger(sector) || sector < 0 || sector >= this.sectorCount) return flashErrorRange;
    this.eraseCounts[sector]++;
    if (this.eraseCounts[sector] > this.eraseLimits[sector]) return flashErrorWorn;
    const start = sector * this.sectorSize;
    if (operation === this.tearAt) {
      const erased = Math.floor(this.random() * this.sectorSize);
      this.bytes.fill(0xff, start, start + erased);
      if (this.tearMode === 'random') {
        for (let i = erased; i < this.sectorSize; i++) this.bytes[start + i] = Math.floor(this.random() * 256);
      }
      this.powerDown(operation);
    }
    this.bytes.fill(0xff, start, start + this.sectorSize);
    this.bytesErased += this.sectorSize;
    return flashOk;
  }

  /** Lets `operations` more program/erase calls complete, then power fails on the next. */
  cutPowerAfter(operations: number): void {
    this.cutAt = this.operations + operations;
  }

  /** Lets `operations` more calls complete, then tears the next one and power fails. */
  tearOperation(operations: number, mode: TearMode): void {
    this.tearAt = this.operations + operations;
    this.tearMode = mode;
  }

  /** Makes `sector` fail once it has been erased `erases` times in total. */
  wearOut(sector: number, erases: number): void {
    this.eraseLimits[sector] = erases;
  }

  /** Power is back (a reboot): pending cuts and tears are forgotten, the bytes stay as they are. */
  restorePower(): void {
    this.powered = true;
    this.cutAt = -1;
    this.tearAt = -1;
  }

  get isPowered(): boolean {
    return this.powered;
  }

  /** Fills the whole area with seeded random bytes (a board with unknown flash contents). */
  fillRandom(seed: number): void {
    const random = seededRandom(seed);
    for (let i = 0; i < this.bytes.length; i++) this.bytes[i] = Math.floor(random() * 256);
  }

  /** The most erases any one sector has had: what limits the area's lifetime. */
  maxEraseCount(): number {
    let max = 0;
    for (const count of this.eraseCounts) max = Math.max(max, count);
    return max;
  }

  private beginOperation(): number {
    this.checkPower();
    const operation = this.operations++;
    if (operation === this.cutAt) this.powerDown(operation);
    return operation;
  }

  private powerDown(operation: number): never {
    this.powered = false;
    throw new PowerLoss(operation);
  }

  private checkPower(): void {
    if (!this.powered) throw new PowerLoss(this.operations);
  }

  private isWorn(sector: number): boolean {
    return this.eraseCounts[sector] > this.eraseLimits[sector];
  }

  private inRange(address: number, length: number): boolean {
    return Number.isInteger(address) && Number.isInteger(length) && address >= 0 && length >= 0 && address + length <= this.bytes.length;
  }
}
