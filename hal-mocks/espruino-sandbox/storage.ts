// Espruino's `require("Storage")` emulated byte for byte over a simulated NOR flash area, kept in
// an image file so a device's files survive a restart. The layout and rules follow Espruino's
// jsflash.c (2v2x) as PROFILE.md describes them.
//
// Fault model:
// - NOR flash: programming can only clear bits (new = old AND data); only a page erase sets bytes
//   back to 0xFF. Each program or page erase is one flash operation; erases are counted per page.
// - Power loss: `cutPowerAfter(n)` lets n more flash operations happen; the next one throws
//   PowerLossError (optionally programming only its first `tornBytes` bytes) and every later call
//   throws too, until a new EspruinoStorage is opened on the same image.
// - What Espruino does in between is kept, including its hazards: replacing a file marks the old
//   copy deleted before the new one is written, and compaction erases pages while live data is
//   held only in RAM.
// Not modelled: wear-out (pages never fail), read disturb, timing.
import { closeSync, existsSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { espruinoStringify, liberalJsonToStandard } from './espruino-json.ts';

/** Thrown by every flash operation once the power has been cut. */
export class PowerLossError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PowerLossError';
  }
}

/**
 * Where values handed back to the caller are created. The sandbox passes its vm context's
 * constructors so that firmware code sees its own realm's Array, ArrayBuffer and Error.
 */
export interface StorageRealm {
  newArray(): unknown[];
  newArrayBuffer(bytes: Uint8Array): ArrayBuffer;
  parseJson(text: string): unknown;
  newError(message: string): Error;
}

const hostRealm: StorageRealm = {
  newArray: () => [],
  newArrayBuffer: (bytes) => bytes.slice().buffer,
  parseJson: (text) => JSON.parse(text) as unknown,
  newError: (message) => new Error(message),
};

export interface EspruinoStorageOptions {
  /** Bytes per erasable page: 4096 on the ESP32. */
  pageBytes: number;
  /** Pages in the Storage area (the ESP32's 896 KB are 224 pages). */
  pageCount: number;
  /** Image file holding the flash bytes; created (all 0xFF) when missing. */
  imagePath?: string;
  /** Initial flash bytes when there is no image file (copied). */
  image?: Uint8Array;
  realm?: StorageRealm;
  /** Called when compaction starts (Espruino prints "Compacting..." on its console then). */
  onCompaction?: () => void;
}

/** A file's header: 4 bytes of size (flags in the top byte), 28 bytes of zero-padded name. */
export const storageHeaderBytes = 32;
/** Longer names are cut to this many bytes without warning, as Espruino does. */
export const storageNameBytesMax = 28;
const alignmentBytes = 4;
const sizeMask = 0x00ffffff;
const flagNone = 0;
const flagStorageFile = 64;
const flagCompressed = 128;
const wordUnset = 0xffffffff;
const none = -1;

interface Header {
  size: number;
  flags: number;
  /** The 28 name bytes as stored. */
  name: Uint8Array;
  deleted: boolean;
}

function align(value: number): number {
  return (value + alignmentBytes - 1) & ~(alignmentBytes - 1);
}

/** The 28 name bytes Espruino stores for `name`: cut to 28, chars as bytes, zero padded. */
function nameBytes(name: unknown): Uint8Array {
  const text = String(name);
  const bytes = new Uint8Array(storageNameBytesMax);
  for (let i = 0; i < text.length && i < storageNameBytesMax; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

function nameText(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length && bytes[i] !== 0; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

function sameName(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < storageNameBytesMax; i++) if (a[i] !== b[i]) return false;
  return true;
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function isArrayBuffer(value: unknown): value is ArrayBuffer {
  return Object.prototype.toString.call(value) === '[object ArrayBuffer]';
}

/** The bytes Espruino would write for `data` (string, array, typed array, ArrayBuffer, number). */
function dataBytes(data: unknown): Uint8Array {
  if (typeof data === 'string') {
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
    return bytes;
  }
  // Built with host constructors: the sandbox's realm has no ArrayBuffer.prototype.slice.
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  if (isArrayBuffer(data)) return new Uint8Array(data).slice();
  if (Array.isArray(data)) {
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) bytes[i] = Number(data[i]) & 0xff;
    return bytes;
  }
  if (typeof data === 'number' || typeof data === 'boolean') return new Uint8Array([Number(data) & 0xff]);
  return new Uint8Array(0);
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !isArrayBuffer(value);
}

/** Espruino's StorageFile chunk size: a page minus one header (4064 bytes on ESP32). */
export function storageFileChunkBytes(pageBytes: number): number {
  return Math.min(pageBytes, 4096) - storageHeaderBytes;
}

export class EspruinoStorage {
  readonly pageBytes: number;
  readonly pageCount: number;
  readonly imagePath: string | undefined;
  private readonly flash: Uint8Array;
  private readonly end: number;
  private readonly realm: StorageRealm;
  private readonly eraseCounts: number[];
  private readonly onCompaction: (() => void) | undefined;
  private fd: number | undefined;
  private operations = 0;
  private powerCutAt: number | undefined;
  private tornBytes = 0;
  private poweredOff = false;
  private compacting = false;
  private cutInCompaction = false;

  constructor(options: EspruinoStorageOptions) {
    if (!(options.pageBytes >= 64 && options.pageBytes % alignmentBytes === 0)) throw new Error(`EspruinoStorage: pageBytes must be a multiple of ${alignmentBytes}, at least 64`);
    if (!(options.pageCount >= 1 && Number.isInteger(options.pageCount))) throw new Error('EspruinoStorage: pageCount must be a whole number of at least 1');
    this.pageBytes = options.pageBytes;
    this.pageCount = options.pageCount;
    this.end = options.pageBytes * options.pageCount;
    this.imagePath = options.imagePath;
    this.realm = options.realm ?? hostRealm;
    this.onCompaction = options.onCompaction;
    this.eraseCounts = new Array<number>(options.pageCount).fill(0);
    this.flash = new Uint8Array(this.end).fill(0xff);
    if (options.image !== undefined) {
      if (options.image.length !== this.end) throw new Error(`EspruinoStorage: image holds ${options.image.length} bytes, expected ${this.end}`);
      this.flash.set(options.image);
    }
    if (options.imagePath !== undefined) this.openImage(options.imagePath, options.image !== undefined);
  }

  // ---- Espruino's API ---------------------------------------------------------------------------

  /** The file (from `offset`, `length` bytes) as a byte string, or undefined when it does not exist. */
  read(name: string, offset?: number, length?: number): string | undefined {
    const found = this.findFile(nameBytes(name));
    if (found === undefined) return undefined;
    const fileLength = found.header.size;
    let start = Math.max(0, Math.floor(offset ?? 0) || 0);
    let count = Math.floor(length ?? 0) || 0;
    if (count <= 0) count = fileLength;
    if (start > fileLength) start = fileLength;
    if (start + count > fileLength) count = fileLength - start;
    if (count <= 0) return '';
    return latin1(this.flash.subarray(found.dataAddress + start, found.dataAddress + start + count));
  }

  readJSON(name: string, noExceptions?: boolean): unknown {
    const text = this.read(name);
    if (text === undefined) return undefined;
    let standard: string;
    try {
      // Liberal, as Espruino's readJSON: writeJSON's own compact form is not JSON.
      standard = liberalJsonToStandard(text);
    } catch (error) {
      if (noExceptions) return undefined;
      throw this.realm.newError((error as Error).message);
    }
    return this.realm.parseJson(standard);
  }

  readArrayBuffer(name: string): ArrayBuffer | undefined {
    const found = this.findFile(nameBytes(name));
    if (found === undefined) return undefined;
    return this.realm.newArrayBuffer(this.flash.slice(found.dataAddress, found.dataAddress + found.header.size));
  }

  /**
   * Espruino's Storage.write. At offset 0 a changed file becomes a new copy (the old one is marked
   * deleted first); elsewhere every target byte must still be 0xFF.
   */
  write(name: string, data: unknown, offset?: number, size?: number): boolean {
    if (isPlainObject(data)) return this.writeFile(nameBytes(name), dataBytes(espruinoStringify(data, false) ?? ''), flagNone, 0, 0);
    return this.writeFile(nameBytes(name), dataBytes(data), flagNone, Math.floor(offset ?? 0) || 0, Math.floor(size ?? 0) || 0);
  }

  /** Writes Espruino's compact form ({a:1,"b c":"\xFF"}): readJSON reads it, JSON.parse does not. */
  writeJSON(name: string, data: unknown): boolean {
    return this.writeFile(nameBytes(name), dataBytes(espruinoStringify(data, true) ?? 'undefined'), flagNone, 0, 0);
  }

  erase(name: string): void {
    const found = this.findFile(nameBytes(name));
    if (found !== undefined) this.markDeleted(found.headerAddress);
  }

  list(pattern?: unknown, filter?: { sf?: boolean }): string[] {
    let containing = 0;
    let notContaining = 0;
    if (filter !== undefined && filter !== null && typeof filter === 'object' && filter.sf !== undefined) {
      if (filter.sf) containing = flagStorageFile;
      else notContaining = flagStorageFile;
    }
    const names = this.realm.newArray();
    for (const entry of this.headers()) {
      if (!this.isRealFile(entry.header)) continue;
      const flags = entry.header.flags;
      if (notContaining & flags) continue;
      if (containing && !(containing & flags)) continue;
      const bytes = entry.header.name.slice();
      if (flags & flagStorageFile) {
        let last = 0;
        while (last + 1 < storageNameBytesMax && bytes[last + 1] !== 0) last++;
        // Only the first chunk of a StorageFile is listed.
        if (bytes[last] !== 1) continue;
        if (containing & flagStorageFile) bytes[last] = 0;
      }
      const text = nameText(bytes);
      if (pattern !== undefined && pattern !== null && text.match(pattern as RegExp | string) === null) continue;
      names.push(text);
    }
    return names as string[];
  }

  /** Moves live files down over deleted ones, page by page, through RAM. */
  compact(): void {
    this.compactInternal();
  }

  /** Bytes free after the last file: the largest file that can be written without compacting. */
  getFree(): number {
    return this.stats().free;
  }

  /** Espruino's usage figures: bytes include headers and alignment. */
  getStats(): { totalBytes: number; freeBytes: number; fileBytes: number; fileCount: number; trashBytes: number; trashCount: number } {
    this.checkPower();
    const stats = this.stats();
    return { totalBytes: this.end, freeBytes: stats.free, fileBytes: stats.fileBytes, fileCount: stats.fileCount, trashBytes: stats.trashBytes, trashCount: stats.trashCount };
  }

  eraseAll(): void {
    for (let page = 0; page < this.pageCount; page++) this.erasePage(page);
  }

  open(name: string, mode: string): EspruinoStorageFile {
    if (mode !== 'r' && mode !== 'w' && mode !== 'a') throw this.realm.newError(`Invalid mode ${JSON.stringify(mode)}`);
    return new EspruinoStorageFile(this, String(name).slice(0, storageNameBytesMax), mode);
  }

  // ---- Emulator controls (not part of Espruino's API) -------------------------------------------

  /** How often each page has been erased since this object was opened. */
  pageEraseCounts(): number[] {
    return this.eraseCounts.slice();
  }

  /** Flash operations (programs and page erases) since this object was opened. */
  get flashOperationCount(): number {
    return this.operations;
  }

  /** Lets `operations` more flash operations happen; the next one loses power. */
  cutPowerAfter(operations: number, tornBytes = 0): void {
    this.powerCutAt = this.operations + operations;
    this.tornBytes = tornBytes;
  }

  get isPoweredOff(): boolean {
    return this.poweredOff;
  }

  /**
   * The power cut came while Storage compacted (its own hazard: a cut between erasing a page and
   * rewriting it can wipe every file, whatever the code on top of Storage does).
   */
  get poweredOffInCompaction(): boolean {
    return this.cutInCompaction;
  }

  /** A copy of the whole flash area. */
  imageBytes(): Uint8Array {
    return this.flash.slice();
  }

  /** Releases the image file. Later calls fail as after a power loss. */
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.poweredOff = true;
  }

  // ---- Internals shared with EspruinoStorageFile -------------------------------------------------

  /** @internal Finds a live file by its 28 name bytes. */
  findFile(name: Uint8Array): { headerAddress: number; dataAddress: number; header: Header } | undefined {
    this.checkPower();
    for (const entry of this.headers()) {
      if (!entry.header.deleted && sameName(entry.header.name, name)) {
        return { headerAddress: entry.address, dataAddress: entry.address + storageHeaderBytes, header: entry.header };
      }
    }
    return undefined;
  }

  /** @internal Espruino's jsfWriteFile. */
  writeFile(name: Uint8Array, data: Uint8Array, flags: number, offset: number, requestedSize: number): boolean {
    this.checkPower();
    if (offset < 0 || requestedSize < 0) return false;
    const size = requestedSize === 0 ? data.length : requestedSize;
    if (size === 0) throw this.realm.newError("Can't create zero length file");
    if (size > sizeMask) throw this.realm.newError('Unable to find or create file');
    let found = this.findFile(name);
    let dataAddress = found === undefined ? none : found.dataAddress;
    let fileSize = found === undefined ? 0 : found.header.size;
    if (offset === 0 && (found === undefined || found.header.flags !== flags || found.header.size !== size || !this.isErased(found.dataAddress, size))) {
      if (found !== undefined && found.header.size === size && found.header.flags === flags && data.length === size && this.isEqual(found.dataAddress, data)) {
        return true;
      }
      // Not atomic, as on the device: the old copy is gone before the new one exists.
      if (found !== undefined) this.markDeleted(found.headerAddress);
      dataAddress = this.createFile(name, size, flags);
      fileSize = size;
      found = undefined;
    }
    if (dataAddress === none) throw this.realm.newError('Unable to find or create file');
    if (offset + data.length > fileSize) throw this.realm.newError('Too much data for file size');
    if (!this.isErased(dataAddress + offset, data.length)) throw this.realm.newError('File already written with different data');
    if (data.length > 0) this.program(dataAddress + offset, data);
    return true;
  }

  /** @internal Raw program, as Espruino's Flash.write (no erased check: bits only clear). */
  programRaw(address: number, data: Uint8Array): void {
    this.program(address, data);
  }

  /** @internal */
  byteAt(address: number): number {
    return this.flash[address]!;
  }

  /** @internal */
  bytes(address: number, length: number): Uint8Array {
    return this.flash.subarray(address, address + length);
  }

  /** @internal */
  newError(message: string): Error {
    return this.realm.newError(message);
  }

  // ---- Flash layout ------------------------------------------------------------------------------

  private headerAt(address: number): Header | undefined {
    if (address < 0 || address + storageHeaderBytes > this.end) return undefined;
    const word = (this.flash[address]! | (this.flash[address + 1]! << 8) | (this.flash[address + 2]! << 16) | (this.flash[address + 3]! << 24)) >>> 0;
    const size = word & sizeMask;
    if (word === wordUnset || word === 0 || address + storageHeaderBytes + size > this.end) return undefined;
    const name = this.flash.slice(address + 4, address + storageHeaderBytes);
    const deleted = name[0] === 0 && name[1] === 0 && name[2] === 0 && name[3] === 0;
    return { size, flags: word >>> 24, name, deleted };
  }

  /** Espruino's jsfGetNextFileHeader: the address where the header after this one should be. */
  private nextHeaderAddress(address: number, header: Header, allPages: boolean): number {
    const next = align(address + storageHeaderBytes + header.size);
    if (next + storageHeaderBytes > this.end) return none;
    if (this.headerAt(next) !== undefined || !allPages) return next;
    // No header there: a later page may start a new run of files.
    const nextPage = (Math.floor(next / this.pageBytes) + 1) * this.pageBytes;
    if (nextPage >= this.end || this.headerAt(nextPage) === undefined) return none;
    return nextPage;
  }

  private *headers(start = 0): Generator<{ address: number; header: Header }> {
    let address = start;
    let header = this.headerAt(address);
    while (header !== undefined) {
      yield { address, header };
      address = this.nextHeaderAddress(address, header, true);
      header = address === none ? undefined : this.headerAt(address);
    }
  }

  private isRealFile(header: Header): boolean {
    return !header.deleted && (header.flags === flagNone || header.flags === flagStorageFile || header.flags === flagCompressed);
  }

  private isErased(address: number, length: number): boolean {
    for (let i = 0; i < length; i++) if (this.flash[address + i] !== 0xff) return false;
    return true;
  }

  private isEqual(address: number, data: Uint8Array): boolean {
    for (let i = 0; i < data.length; i++) if (this.flash[address + i] !== data[i]) return false;
    return true;
  }

  /** Space from `address` to the end of its page, or to the end of flash when the next page is empty. */
  private spaceLeftInPage(address: number): number {
    let nextPageStart = (Math.floor(address / this.pageBytes) + 1) * this.pageBytes;
    if (nextPageStart < this.end && this.headerAt(nextPageStart) === undefined) nextPageStart = this.end;
    return Math.min(nextPageStart, this.end) - address;
  }

  /** Espruino's jsfCreateFile: the first hole big enough, compacting once if that would help. */
  private createFile(name: Uint8Array, size: number, flags: number): number {
    const required = align(size) + storageHeaderBytes;
    let compacted = false;
    for (;;) {
      let address = 0;
      let freeSpace = 0;
      let trashSpace = 0;
      let freeAddress = none;
      while (address !== none && freeAddress === none) {
        let header = this.headerAt(address);
        while (header !== undefined) {
          if (header.deleted) trashSpace += header.size;
          address = this.nextHeaderAddress(address, header, false);
          header = address === none ? undefined : this.headerAt(address);
        }
        if (address === none) break;
        const space = this.spaceLeftInPage(address);
        freeSpace += space;
        if (space < required) {
          const nextPage = (Math.floor(address / this.pageBytes) + 1) * this.pageBytes;
          address = nextPage < this.end ? nextPage : none;
        } else {
          freeAddress = address;
        }
      }
      if (freeAddress !== none) {
        const header = new Uint8Array(storageHeaderBytes);
        const word = (size | (flags << 24)) >>> 0;
        header[0] = word & 0xff;
        header[1] = (word >>> 8) & 0xff;
        header[2] = (word >>> 16) & 0xff;
        header[3] = word >>> 24;
        header.set(name, 4);
        this.program(freeAddress, header);
        return freeAddress + storageHeaderBytes;
      }
      // Compact only when it would surely make room: better to fail fast.
      if (compacted || required >= freeSpace + trashSpace) return none;
      compacted = true;
      if (!this.compactInternal()) return none;
    }
  }

  private markDeleted(headerAddress: number): void {
    this.program(headerAddress + 4, new Uint8Array(4));
  }

  private stats(): { fileBytes: number; fileCount: number; trashBytes: number; trashCount: number; free: number; firstPageWithTrash: number; lastAddress: number } {
    let fileBytes = 0;
    let fileCount = 0;
    let trashBytes = 0;
    let trashCount = 0;
    let lastAddress = 0;
    let lastUnbrokenPageStart = 0;
    let firstPageWithTrash = none;
    for (const entry of this.headers()) {
      if (entry.address % this.pageBytes === 0) lastUnbrokenPageStart = entry.address;
      const bytes = align(entry.header.size) + storageHeaderBytes;
      lastAddress = entry.address + bytes;
      if (!entry.header.deleted) {
        fileBytes += bytes;
        fileCount++;
      } else {
        trashBytes += bytes;
        trashCount++;
        if (firstPageWithTrash === none) firstPageWithTrash = lastUnbrokenPageStart;
      }
    }
    return { fileBytes, fileCount, trashBytes, trashCount, free: this.end - lastAddress, firstPageWithTrash, lastAddress };
  }

  /**
   * Rewrites the area from the first page holding trash: every live file moves down in order.
   * Each destination page is erased and then programmed from RAM, so a power cut between the two
   * loses what that page was to hold, as on the device.
   */
  private compactInternal(): boolean {
    this.compacting = true;
    try {
      return this.compactPages();
    } finally {
      this.compacting = false;
    }
  }

  private compactPages(): boolean {
    const stats = this.stats();
    if (stats.trashBytes === 0) return false;
    this.onCompaction?.();
    const start = stats.firstPageWithTrash;
    const fresh = new Uint8Array(stats.lastAddress - start).fill(0xff);
    let write = 0;
    for (const entry of this.headers(start)) {
      if (!this.isRealFile(entry.header)) continue;
      const bytes = storageHeaderBytes + align(entry.header.size);
      fresh.set(this.flash.subarray(entry.address, entry.address + bytes), write);
      write += bytes;
    }
    const firstPage = start / this.pageBytes;
    const lastPage = Math.ceil(stats.lastAddress / this.pageBytes) - 1;
    for (let page = firstPage; page <= lastPage; page++) {
      this.erasePage(page);
      const from = page * this.pageBytes - start;
      const to = Math.min(from + this.pageBytes, write);
      if (to > from) this.program(page * this.pageBytes, fresh.subarray(from, to));
    }
    return true;
  }

  // ---- Flash operations --------------------------------------------------------------------------

  private checkPower(): void {
    if (this.poweredOff) throw new PowerLossError('Storage: the power is off');
  }

  /** Counts one flash operation; returns false when the power goes at this one. */
  private startOperation(): boolean {
    this.checkPower();
    if (this.powerCutAt !== undefined && this.operations >= this.powerCutAt) {
      this.poweredOff = true;
      return false;
    }
    this.operations++;
    return true;
  }

  private program(address: number, data: Uint8Array): void {
    if (address < 0 || address + data.length > this.end) throw new Error(`EspruinoStorage: program outside the area at ${address}`);
    const powered = this.startOperation();
    const length = powered ? data.length : Math.min(this.tornBytes, data.length);
    for (let i = 0; i < length; i++) this.flash[address + i] = this.flash[address + i]! & data[i]!;
    if (length > 0) this.persist(address, length);
    if (!powered) this.losePower(`program of ${data.length} bytes at ${address}`);
  }

  private erasePage(page: number): void {
    if (!this.startOperation()) this.losePower(`erase of page ${page}`);
    this.flash.fill(0xff, page * this.pageBytes, (page + 1) * this.pageBytes);
    this.eraseCounts[page]!++;
    this.persist(page * this.pageBytes, this.pageBytes);
  }

  private losePower(what: string): never {
    this.powerCutAt = undefined;
    this.cutInCompaction = this.compacting;
    throw new PowerLossError(`Storage: power lost during ${what} (flash operation ${this.operations + 1})`);
  }

  private persist(address: number, length: number): void {
    if (this.fd !== undefined) writeSync(this.fd, this.flash, address, length, address);
  }

  private openImage(path: string, overwrite: boolean): void {
    if (existsSync(path) && !overwrite) {
      this.fd = openSync(path, 'r+');
      const bytes = fstatSync(this.fd).size;
      if (bytes !== this.end) {
        closeSync(this.fd);
        this.fd = undefined;
        throw new Error(`EspruinoStorage: ${path} holds ${bytes} bytes, expected ${this.end} (${this.pageCount} pages of ${this.pageBytes})`);
      }
      const buffer = Buffer.from(this.flash.buffer, this.flash.byteOffset, this.flash.byteLength);
      let done = 0;
      while (done < this.end) {
        const read = readSync(this.fd, buffer, done, this.end - done, done);
        if (read <= 0) break;
        done += read;
      }
      return;
    }
    this.fd = openSync(path, 'w+');
    writeSync(this.fd, this.flash, 0, this.end, 0);
  }
}

/** Espruino's StorageFile: a file appended in numbered chunks ("name\x01", "name\x02", ...). */
export class EspruinoStorageFile {
  readonly name: string;
  private chunk = 1;
  private offset = 0;
  private address = none;
  private mode: 'r' | 'w' | 'a' | '';
  private readonly storage: EspruinoStorage;
  private readonly chunkBytes: number;

  constructor(storage: EspruinoStorage, name: string, mode: 'r' | 'w' | 'a') {
    this.storage = storage;
    this.name = name;
    this.mode = mode;
    this.chunkBytes = storageFileChunkBytes(storage.pageBytes);
    let found = storage.findFile(this.chunkName(1));
    if (mode === 'w' && found !== undefined) {
      this.erase();
      this.mode = 'w';
      found = undefined;
    }
    if (mode === 'a') {
      // Find the last chunk, then the first 0xFF in it.
      while (found !== undefined && storage.byteAt(found.dataAddress + found.header.size - 1) !== 0xff && this.chunk < 255) {
        this.chunk++;
        found = storage.findFile(this.chunkName(this.chunk));
      }
      if (found !== undefined) {
        while (this.offset < this.chunkBytes && storage.byteAt(found.dataAddress + this.offset) !== 0xff) this.offset++;
      }
    }
    this.address = found === undefined ? none : found.dataAddress;
  }

  read(length: number): string | undefined {
    return this.readInternal(Math.max(0, Math.floor(length) || 0), false);
  }

  readLine(): string | undefined {
    return this.readInternal(0, true);
  }

  getLength(): number {
    let chunk = 1;
    let length = 0;
    let found = this.storage.findFile(this.chunkName(chunk));
    while (found !== undefined && this.storage.byteAt(found.dataAddress + found.header.size - 1) !== 0xff && chunk < 255) {
      length += found.header.size;
      chunk++;
      found = this.storage.findFile(this.chunkName(chunk));
    }
    if (found !== undefined) {
      let offset = 0;
      while (offset < this.chunkBytes && this.storage.byteAt(found.dataAddress + offset) !== 0xff) offset++;
      length += offset;
    }
    return length;
  }

  /** Appends. The byte 0xFF is written as given, and then reads as the end of the file. */
  write(data: unknown): void {
    if (this.mode !== 'w' && this.mode !== 'a') throw this.storage.newError("Can't write in this mode");
    const bytes = dataBytes(typeof data === 'string' ? data : String(data));
    if (bytes.length === 0) return;
    const found = this.storage.findFile(this.chunkName(this.chunk));
    if (found === undefined) {
      try {
        this.storage.writeFile(this.chunkName(this.chunk), bytes, flagStorageFile, 0, this.chunkBytes);
      } catch (error) {
        this.mode = '';
        throw error;
      }
      this.address = this.storage.findFile(this.chunkName(this.chunk))!.dataAddress;
      this.offset = bytes.length;
      return;
    }
    this.address = found.dataAddress;
    const remaining = found.header.size - this.offset;
    if (bytes.length < remaining) {
      this.storage.programRaw(found.dataAddress + this.offset, bytes);
      this.offset += bytes.length;
      return;
    }
    this.storage.programRaw(found.dataAddress + this.offset, bytes.subarray(0, remaining));
    this.offset += remaining;
    if (this.chunk === 255) throw this.storage.newError('File too big!');
    this.chunk++;
    const rest = bytes.subarray(remaining);
    try {
      this.storage.writeFile(this.chunkName(this.chunk), rest, flagStorageFile, 0, this.chunkBytes);
    } catch (error) {
      this.mode = '';
      throw error;
    }
    this.address = this.storage.findFile(this.chunkName(this.chunk))!.dataAddress;
    this.offset = rest.length;
  }

  erase(): void {
    for (let chunk = 1; chunk <= 255; chunk++) {
      const found = this.storage.findFile(this.chunkName(chunk));
      if (found === undefined) break;
      this.storage.erase(nameText(this.chunkName(chunk)));
    }
    this.chunk = 1;
    this.offset = 0;
    this.mode = '';
  }

  private chunkName(chunk: number): Uint8Array {
    const bytes = nameBytes(this.name);
    let index = storageNameBytesMax - 1;
    while (index > 0 && bytes[index - 1] === 0) index--;
    bytes[index] = chunk;
    return bytes;
  }

  private readInternal(length: number, line: boolean): string | undefined {
    if (this.mode !== 'r') throw this.storage.newError("Can't read in this mode");
    if (this.address === none) return undefined;
    let result: string | undefined;
    let wanted = line ? Number.POSITIVE_INFINITY : length;
    while (wanted > 0) {
      if (this.offset >= this.chunkBytes) {
        this.offset = 0;
        if (this.chunk === 255) {
          this.address = none;
        } else {
          this.chunk++;
          const found = this.storage.findFile(this.chunkName(this.chunk));
          this.address = found === undefined ? none : found.dataAddress;
        }
        if (this.address === none) return result;
      }
      const byte = this.storage.byteAt(this.address + this.offset);
      if (byte === 0xff) break;
      result = (result ?? '') + String.fromCharCode(byte);
      this.offset++;
      wanted--;
      if (line && byte === 10) break;
    }
    return result;
  }
}
