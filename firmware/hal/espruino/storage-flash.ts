// The HAL `Flash` on a board: each sector is one preallocated file of Espruino's Storage, written
// only where its bytes are still erased. The firmware main passes `require("Storage")`; tests pass
// the sandbox's EspruinoStorage. Trade-offs with Storage's own compaction: firmware/DESIGN.md.
//
// File layout: byte 0 is a marker written when the file is preallocated; sector byte i is file
// byte i + 1. Storage.write at offset 0 of a file that holds data makes a NEW copy of the file
// (the rest erased, the old copy trash), so the marker keeps every program at offset >= 1.
//
// [FLASH-1] A sector whose file is missing reads as erased, and a program preallocates it first:
//           a power cut between erase (Storage.erase) and preallocation is therefore harmless.
// [FLASH-2] prog refuses (flashErrorNotErased) any byte that is neither erased nor already equal,
//           as the flash simulator does, and skips equal bytes, because Storage refuses to write
//           even identical data over programmed bytes.
import { flashErrorIo, flashErrorNotErased, flashErrorRange, flashOk, type Flash, type FlashResult } from '../flash.ts';

/** The part of Espruino's Storage module this Flash uses (structurally `require("Storage")`). */
export interface StorageApi {
  readArrayBuffer(name: string): ArrayBuffer | undefined;
  write(name: string, data: string | Uint8Array, offset?: number, size?: number): boolean;
  erase(name: string): void;
}

/** Written at file byte 0 on preallocation ("T"): never 0xFF, so offset 0 is never rewritten. */
const fileMarker = 0x54;
/** A Storage file header is 32 bytes and files are 4-byte aligned. */
const storageFileOverheadBytes = 32 + 4;

/** The largest sector whose file (header, marker, data) fits one Storage page of `pageBytes`. */
export function storageSectorSizeFor(pageBytes: number): number {
  return pageBytes - storageFileOverheadBytes;
}

export class StorageFlash implements Flash {
  declare readonly sectorSize: number;
  declare readonly sectorCount: number;
  declare private readonly storage: StorageApi;
  declare private readonly prefix: string;
  declare private readonly marker: Uint8Array;

  /**
   * `prefix` names the files (`prefix + sector`, kept under Storage's 28-character limit).
   * Files of this prefix with the wrong size or marker (another geometry, a torn preallocation)
   * are erased here, so they read as erased sectors.
   */
  constructor(storage: StorageApi, prefix: string, sectorSize: number, sectorCount: number) {
    if (prefix.length + 3 > 28) throw new Error('StorageFlash: prefix too long');
    if (sectorSize < 1 || sectorCount < 1 || sectorCount > 999) throw new Error('StorageFlash: bad geometry');
    this.storage = storage;
    this.prefix = prefix;
    this.sectorSize = sectorSize;
    this.sectorCount = sectorCount;
    this.marker = new Uint8Array(1);
    this.marker[0] = fileMarker;
    for (let sector = 0; sector < sectorCount; sector++) {
      const buffer = storage.readArrayBuffer(this.fileName(sector));
      if (buffer === undefined) continue;
      if (buffer.byteLength !== sectorSize + 1 || new Uint8Array(buffer, 0, 1)[0] !== fileMarker) storage.erase(this.fileName(sector));
    }
  }

  read(address: number, into: Uint8Array, intoOffset: number, length: number): FlashResult {
    if (!this.inRange(address, length) || intoOffset < 0 || intoOffset + length > into.length) return flashErrorRange;
    let done = 0;
    while (done < length) {
      const sector = Math.floor((address + done) / this.sectorSize);
      const offset = address + done - sector * this.sectorSize;
      const step = length - done < this.sectorSize - offset ? length - done : this.sectorSize - offset;
      const buffer = this.storage.readArrayBuffer(this.fileName(sector));
      if (buffer === undefined) {
        into.fill(0xff, intoOffset + done, intoOffset + done + step);
      } else {
        // On an ESP32 the buffer is memory-mapped flash: this is one native copy, no RAM copy of the file.
        into.set(new Uint8Array(buffer, 1 + offset, step), intoOffset + done);
      }
      done += step;
    }
    return flashOk;
  }

  prog(address: number, data: Uint8Array, dataOffset: number, length: number): FlashResult {
    if (!this.inRange(address, length) || dataOffset < 0 || dataOffset + length > data.length) return flashErrorRange;
    let done = 0;
    while (done < length) {
      const sector = Math.floor((address + done) / this.sectorSize);
      const offset = address + done - sector * this.sectorSize;
      const step = length - done < this.sectorSize - offset ? length - done : this.sectorSize - offset;
      const result = this.progInSector(sector, offset, data, dataOffset + done, step);
      if (result !== flashOk) return result;
      done += step;
    }
    return flashOk;
  }

  erase(sector: number): FlashResult {
    if (!(sector >= 0 && sector < this.sectorCount && Math.floor(sector) === sector)) return flashErrorRange;
    try {
      // [FLASH-1] A cut after this line leaves no file: the sector reads as erased.
      this.storage.erase(this.fileName(sector));
      return this.preallocate(sector);
    } catch {
      return flashErrorIo;
    }
  }

  private progInSector(sector: number, offset: number, data: Uint8Array, dataOffset: number, length: number): FlashResult {
    const name = this.fileName(sector);
    let buffer = this.storage.readArrayBuffer(name);
    if (buffer === undefined) {
      const created = this.preallocate(sector);
      if (created !== flashOk) return created;
      buffer = this.storage.readArrayBuffer(name);
      if (buffer === undefined) return flashErrorIo;
    }
    const current = new Uint8Array(buffer, 1 + offset, length);
    // Check every byte before writing any, so a refused program changes nothing.
    for (let i = 0; i < length; i++) {
      const old = current[i];
      if (old !== 0xff && old !== data[dataOffset + i]) return flashErrorNotErased;
    }
    // Write each run of bytes that differ (all still erased): Storage refuses equal ones too.
    let i = 0;
    while (i < length) {
      if (current[i] === data[dataOffset + i]) {
        i++;
        continue;
      }
      let end = i + 1;
      while (end < length && current[end] !== data[dataOffset + end]) end++;
      try {
        if (!this.storage.write(name, data.subarray(dataOffset + i, dataOffset + end), 1 + offset + i)) return flashErrorIo;
      } catch {
        return flashErrorIo;
      }
      i = end;
    }
    return flashOk;
  }

  private preallocate(sector: number): FlashResult {
    try {
      return this.storage.write(this.fileName(sector), this.marker, 0, this.sectorSize + 1) ? flashOk : flashErrorIo;
    } catch {
      return flashErrorIo;
    }
  }

  private fileName(sector: number): string {
    return this.prefix + sector;
  }

  private inRange(address: number, length: number): boolean {
    return address >= 0 && length >= 0 && Math.floor(address) === address && Math.floor(length) === length && address + length <= this.sectorSize * this.sectorCount;
  }
}
