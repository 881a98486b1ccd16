// The power-safe, wear-aware state store: typed keys kept in RAM and persisted as a log of
// CRC-checked records, appended only into erased flash and rotated segment by segment.
// Layout and the reasoning behind it: firmware/DESIGN.md, "Storage".
//
// [STORE-1] Records are only ever programmed into erased bytes; nothing is overwritten in place.
// [STORE-2] One committed segment holds the whole state: a rotation copies the live set into a
//           freshly erased sector, then commits it; the older segment is simply superseded.
// [STORE-3] Replay takes the committed segment of highest generation and applies its records in
//           order; a record with a bad CRC ends the scan, and a dirty tail forces a rotation
//           before the next append.
// [STORE-4] Every flash call returns a code; a failing sector is skipped for the rest of the boot.
import { flashOk, type Flash } from '../hal/flash.ts';
import { stateStoreValueBytesMax } from '../protocol/limits.ts';
import type { Crc32 } from '../protocol/crc32.ts';
import {
  checkTemplate,
  fieldAcceptsLength,
  stateOwnerCloud,
  stateTypeBool,
  stateTypeFixed,
  stateTypeInt,
  stateTypeString,
  type StateTemplate,
} from './state-template.ts';
import { getU32, putU32 } from '../protocol/bits.ts';

export const stateOk = 0;
/** The key id is not in the template. */
export const stateErrorUnknownKey = -10;
/** The value does not fit the key's type (size, range, type). */
export const stateErrorBadValue = -11;
/** A cloud write or ack carries a version that is not newer than (or ahead of) the device's. */
export const stateErrorStale = -12;
/** No usable sector is left (all worn) or the flash failed: the change was not persisted. */
export const stateErrorFlash = -13;
/** [SYNC-32] The key is cloud-owned: only the cloud changes it (applyCloudValue). */
export const stateErrorOwner = -14;

/** Segment header: magic "TdS" + format 1, generation, CRC of those 8 bytes, commit word. */
export const segmentHeaderBytes = 16;
const segmentMagic0 = 0x54;
const segmentMagic1 = 0x64;
const segmentMagic2 = 0x53;
const segmentFormat = 1;
/** XORed into the header CRC to make the commit word, so a commit never equals an old one. */
const commitMask = 0xa5a5a5a5;

/** Record kinds (low two bits of a record's second byte). */
const kindSet = 0;
const kindSetAcked = 1;
const kindDelete = 2;
const kindAck = 3;
const recordOwnerCloudBit = 4;
const recordCrcBytes = 4;
/** keyId, kind/owner, length. */
const recordPrefixBytes = 3;
/** The largest record: prefix, version, acked version, value, CRC. */
export const stateRecordBytesMax = recordPrefixBytes + 8 + stateStoreValueBytesMax + recordCrcBytes;

/** Per-key flags in RAM. */
const flagPresent = 1;
const flagDeleted = 2;
const flagDirty = 4;
const flagAckDirty = 8;

export interface StateStoreOptions {
  /** CRC-32 (IEEE) over a byte range: the table-driven one in Node, E.CRC32 on a board. */
  crc32: Crc32;
  /**
   * 0: every change is programmed at once. Otherwise changes stay in RAM (marked dirty) and
   * `tick` persists them once the first pending change is this old, bounding wear for keys that
   * change often; a power cut loses the pending changes.
   */
  coalesceWindowMs: number;
  /**
   * [SYNC-32] Refuse local writes to cloud-owned keys (the sync engine's device sets this): with
   * one owner per key, no key can change on both sides. Off for a plain key-value store.
   */
  enforceOwnership?: boolean;
}

function recordBytesFor(kind: number, length: number): number {
  if (kind === kindSet) return recordPrefixBytes + 4 + length + recordCrcBytes;
  if (kind === kindSetAcked) return recordPrefixBytes + 8 + length + recordCrcBytes;
  if (kind === kindDelete) return recordPrefixBytes + 8 + recordCrcBytes;
  return recordPrefixBytes + 4 + recordCrcBytes;
}

export class StateStore {
  // Fields are `declare`d and set in the constructor: field initialisers would pull a
  // define-property helper into the bundle.
  declare readonly template: StateTemplate;
  declare readonly keyCount: number;
  /** Rotations done since construction (each erases one sector). */
  declare rotations: number;
  /** Records programmed since construction (rotations included). */
  declare recordsWritten: number;
  /** After mount: records replayed, whether the area was formatted, whether the tail was torn. */
  declare recordsReplayed: number;
  declare formatted: boolean;
  declare tornTail: boolean;

  declare private readonly flash: Flash;
  declare private readonly crc32: Crc32;
  declare private readonly coalesceWindowMs: number;
  declare private readonly enforceOwnership: boolean;
  declare private readonly sectorSize: number;
  declare private readonly sectorCount: number;
  declare private readonly values: Uint8Array;
  declare private readonly valueOffsets: Uint16Array;
  declare private readonly valueLengths: Uint8Array;
  declare private readonly versions: Uint32Array;
  declare private readonly ackedVersions: Uint32Array;
  declare private readonly flags: Uint8Array;
  declare private readonly badSectors: Uint8Array;
  declare private readonly scratch: Uint8Array;
  /** Holds a value being set (never the record scratch: a rotation reuses that). */
  declare private readonly valueScratch: Uint8Array;
  declare private baseSector: number;
  declare private baseGeneration: number;
  declare private writeOffset: number;
  declare private appendBlocked: boolean;
  declare private mounted: boolean;
  declare private firstDirtyMs: number;

  constructor(flash: Flash, template: StateTemplate, options: StateStoreOptions) {
    checkTemplate(template);
    this.rotations = 0;
    this.recordsWritten = 0;
    this.recordsReplayed = 0;
    this.formatted = false;
    this.tornTail = false;
    this.baseSector = -1;
    this.baseGeneration = 0;
    this.writeOffset = 0;
    this.appendBlocked = true;
    this.mounted = false;
    this.firstDirtyMs = -1;
    this.flash = flash;
    this.template = template;
    this.crc32 = options.crc32;
    this.coalesceWindowMs = options.coalesceWindowMs;
    this.enforceOwnership = options.enforceOwnership === true;
    this.sectorSize = flash.sectorSize;
    this.sectorCount = flash.sectorCount;
    if (this.sectorCount < 2) throw new Error('state store: needs at least 2 sectors');
    const fields = template.fields;
    this.keyCount = fields.length;
    this.valueOffsets = new Uint16Array(this.keyCount);
    this.valueLengths = new Uint8Array(this.keyCount);
    let arenaBytes = 0;
    let liveBytes = segmentHeaderBytes;
    for (let i = 0; i < this.keyCount; i++) {
      this.valueOffsets[i] = arenaBytes;
      arenaBytes += fields[i].maxLength;
      liveBytes += recordBytesFor(kindSetAcked, fields[i].maxLength);
    }
    // A rotation must leave room to append: the live set may fill at most half a segment.
    if (liveBytes * 2 > this.sectorSize) throw new Error('state store: template too large for the sector size');
    this.values = new Uint8Array(arenaBytes > 0 ? arenaBytes : 1);
    this.versions = new Uint32Array(this.keyCount);
    this.ackedVersions = new Uint32Array(this.keyCount);
    this.flags = new Uint8Array(this.keyCount);
    this.badSectors = new Uint8Array(this.sectorCount);
    this.scratch = new Uint8Array(stateRecordBytesMax);
    this.valueScratch = new Uint8Array(stateStoreValueBytesMax);
  }

  /**
   * Replays the flash area into RAM ([STORE-3]). Never throws on flash contents, whatever they
   * are; formats an area with no committed segment. Returns stateOk or stateErrorFlash.
   */
  mount(): number {
    this.mounted = true;
    this.formatted = false;
    this.tornTail = false;
    this.recordsReplayed = 0;
    for (let i = 0; i < this.keyCount; i++) {
      this.flags[i] = 0;
      this.versions[i] = 0;
      this.ackedVersions[i] = 0;
      this.valueLengths[i] = 0;
    }
    this.baseSector = -1;
    this.baseGeneration = 0;
    for (let sector = 0; sector < this.sectorCount; sector++) this.badSectors[sector] = 0;
    for (let sector = 0; sector < this.sectorCount; sector++) {
      const generation = this.readCommittedGeneration(sector);
      if (generation > 0 && (this.baseSector < 0 || generation > this.baseGeneration)) {
        this.baseSector = sector;
        this.baseGeneration = generation;
      }
    }
    if (this.baseSector < 0) {
      this.formatted = true;
      this.appendBlocked = true;
      return this.rotate();
    }
    this.replayBase();
    return stateOk;
  }

  // ---- reading ----

  /** Whether the key holds a value (written and not deleted). */
  has(keyId: number): boolean {
    return this.validKey(keyId) && (this.flags[keyId] & (flagPresent | flagDeleted)) === flagPresent;
  }

  isDeleted(keyId: number): boolean {
    return this.validKey(keyId) && (this.flags[keyId] & flagDeleted) !== 0;
  }

  /** The key's version: 0 before its first write; grows by one per local change. */
  version(keyId: number): number {
    return this.validKey(keyId) ? this.versions[keyId] : 0;
  }

  /** The version the cloud last acknowledged for this key (0: none). */
  ackedVersion(keyId: number): number {
    return this.validKey(keyId) ? this.ackedVersions[keyId] : 0;
  }

  owner(keyId: number): number {
    return this.template.fields[keyId].owner;
  }

  /** Whether the key changed since the cloud's last acknowledgement (what sync must send). */
  isChanged(keyId: number): boolean {
    return this.validKey(keyId) && this.versions[keyId] > this.ackedVersions[keyId];
  }

  /** The first key id >= `fromKeyId` changed since its acknowledgement, or -1: sync's iterator. */
  nextChanged(fromKeyId: number): number {
    for (let i = fromKeyId < 0 ? 0 : fromKeyId; i < this.keyCount; i++) if (this.versions[i] > this.ackedVersions[i]) return i;
    return -1;
  }

  /** Keys changed since their last acknowledgement. */
  changedCount(): number {
    let count = 0;
    for (let i = 0; i < this.keyCount; i++) if (this.versions[i] > this.ackedVersions[i]) count++;
    return count;
  }

  /** Whether changes wait in RAM for `flush` (coalescing). */
  hasPendingWrites(): boolean {
    for (let i = 0; i < this.keyCount; i++) if ((this.flags[i] & (flagDirty | flagAckDirty)) !== 0) return true;
    return false;
  }

  /** Copies the key's value bytes into `into` at `offset`; returns their length, or -1 if absent. */
  readBytes(keyId: number, into: Uint8Array, offset: number): number {
    if (!this.has(keyId)) return -1;
    const length = this.valueLengths[keyId];
    const start = this.valueOffsets[keyId];
    for (let i = 0; i < length; i++) into[offset + i] = this.values[start + i];
    return length;
  }

  getBool(keyId: number): boolean | undefined {
    if (!this.has(keyId) || this.template.fields[keyId].type !== stateTypeBool) return undefined;
    return this.values[this.valueOffsets[keyId]] !== 0;
  }

  /** An int or fixed-point key as a number. */
  getNumber(keyId: number): number | undefined {
    if (!this.has(keyId)) return undefined;
    const field = this.template.fields[keyId];
    if (field.type !== stateTypeInt && field.type !== stateTypeFixed) return undefined;
    const raw = getU32(this.values, this.valueOffsets[keyId]) | 0;
    return field.type === stateTypeFixed ? raw / Math.pow(10, field.scale) : raw;
  }

  getString(keyId: number): string | undefined {
    if (!this.has(keyId) || this.template.fields[keyId].type !== stateTypeString) return undefined;
    let text = '';
    const start = this.valueOffsets[keyId];
    const length = this.valueLengths[keyId];
    for (let i = 0; i < length; i++) text += String.fromCharCode(this.values[start + i]);
    return text;
  }

  // ---- local (device) changes: version + 1, acknowledged version unchanged ----

  setBool(keyId: number, value: boolean): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (this.template.fields[keyId].type !== stateTypeBool) return stateErrorBadValue;
    this.valueScratch[0] = value ? 1 : 0;
    return this.setBytes(keyId, this.valueScratch, 0, 1);
  }

  /** An int key takes a whole number in the signed 32-bit range; a fixed key is rounded to its scale. */
  setNumber(keyId: number, value: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    const field = this.template.fields[keyId];
    if (field.type !== stateTypeInt && field.type !== stateTypeFixed) return stateErrorBadValue;
    const raw = field.type === stateTypeFixed ? Math.round(value * Math.pow(10, field.scale)) : value;
    if (typeof raw !== 'number' || raw !== raw || raw < -2147483648 || raw > 2147483647 || Math.floor(raw) !== raw) return stateErrorBadValue;
    putU32(this.valueScratch, 0, raw);
    return this.setBytes(keyId, this.valueScratch, 0, 4);
  }

  setString(keyId: number, value: string): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    const field = this.template.fields[keyId];
    if (field.type !== stateTypeString || value.length > field.maxLength) return stateErrorBadValue;
    const bytes = this.valueScratch;
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code > 255) return stateErrorBadValue;
      bytes[i] = code;
    }
    return this.setBytes(keyId, bytes, 0, value.length);
  }

  /** Sets a key from its encoded bytes (any type; the length must fit the field). */
  setBytes(keyId: number, data: Uint8Array, offset: number, length: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (this.enforceOwnership && this.template.fields[keyId].owner === stateOwnerCloud) return stateErrorOwner;
    if (!fieldAcceptsLength(this.template.fields[keyId], length)) return stateErrorBadValue;
    return this.change(keyId, false, data, offset, length, (this.versions[keyId] + 1) >>> 0, this.ackedVersions[keyId]);
  }

  /** Deletes a key locally; the deletion is versioned and reported like any change. */
  remove(keyId: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (this.enforceOwnership && this.template.fields[keyId].owner === stateOwnerCloud) return stateErrorOwner;
    if (!this.has(keyId)) return stateOk;
    return this.change(keyId, true, this.values, 0, 0, (this.versions[keyId] + 1) >>> 0, this.ackedVersions[keyId]);
  }

  // ---- changes from the cloud: they carry the cloud's version, already acknowledged ----

  /** Applies a cloud value at `version`; refused as stale unless newer than the device's. */
  applyCloudValue(keyId: number, data: Uint8Array, offset: number, length: number, version: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (!fieldAcceptsLength(this.template.fields[keyId], length)) return stateErrorBadValue;
    if (version <= this.versions[keyId] || version > 0xffffffff) return stateErrorStale;
    return this.change(keyId, false, data, offset, length, version, version);
  }

  applyCloudRemoval(keyId: number, version: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (version <= this.versions[keyId] || version > 0xffffffff) return stateErrorStale;
    return this.change(keyId, true, this.values, 0, 0, version, version);
  }

  /** The cloud has durably stored the key at `version` (at most the device's version). */
  ack(keyId: number, version: number): number {
    if (!this.validKey(keyId)) return stateErrorUnknownKey;
    if (version > this.versions[keyId]) return stateErrorStale;
    if (version <= this.ackedVersions[keyId]) return stateOk;
    if (this.coalesceWindowMs > 0) {
      this.ackedVersions[keyId] = version;
      this.flags[keyId] |= flagAckDirty;
      return stateOk;
    }
    const result = this.persist(keyId, kindAck, this.values, 0, 0, 0, version);
    if (result === stateOk) this.ackedVersions[keyId] = version;
    return result;
  }

  // ---- persistence control ----

  /** Drives coalescing: persists pending changes once the first is coalesceWindowMs old. */
  tick(nowMs: number): number {
    if (this.coalesceWindowMs <= 0 || !this.hasPendingWrites()) {
      this.firstDirtyMs = -1;
      return stateOk;
    }
    if (this.firstDirtyMs < 0) this.firstDirtyMs = nowMs;
    if (nowMs - this.firstDirtyMs < this.coalesceWindowMs) return stateOk;
    return this.flush();
  }

  /** Persists every pending (coalesced) change now. */
  flush(): number {
    for (let keyId = 0; keyId < this.keyCount; keyId++) {
      const flags = this.flags[keyId];
      if ((flags & flagDirty) !== 0) {
        const kind = (flags & flagDeleted) !== 0 ? kindDelete : kindSetAcked;
        const result = this.persist(keyId, kind, this.values, this.valueOffsets[keyId], this.valueLengths[keyId], this.versions[keyId], this.ackedVersions[keyId]);
        if (result !== stateOk) return result;
      } else if ((flags & flagAckDirty) !== 0) {
        const result = this.persist(keyId, kindAck, this.values, 0, 0, 0, this.ackedVersions[keyId]);
        if (result !== stateOk) return result;
      }
      this.flags[keyId] &= ~(flagDirty | flagAckDirty);
    }
    this.firstDirtyMs = -1;
    return stateOk;
  }

  /**
   * Copies the live set into the next usable sector and commits it there ([STORE-2]): the
   * segment's header is programmed first, then every key, then the commit word. Until the commit
   * word is programmed the previous segment stays the one replayed, so a cut anywhere in here
   * loses nothing. Pending coalesced changes are persisted with the copy.
   */
  rotate(): number {
    if (!this.mounted) throw new Error('state store: mount() first');
    let candidate = this.baseSector;
    for (let attempt = 0; attempt < this.sectorCount; attempt++) {
      candidate = (candidate + 1) % this.sectorCount;
      if (candidate === this.baseSector || this.badSectors[candidate] !== 0) continue;
      if (this.writeSegment(candidate)) {
        this.rotations++;
        return stateOk;
      }
      this.badSectors[candidate] = 1;
    }
    return stateErrorFlash;
  }

  /** Sectors found failing during this boot (skipped by rotation). */
  badSectorCount(): number {
    let count = 0;
    for (let i = 0; i < this.sectorCount; i++) count += this.badSectors[i];
    return count;
  }

  /** The sector and generation replayed or last committed (-1 before mount). */
  get currentSector(): number {
    return this.baseSector;
  }

  get currentGeneration(): number {
    return this.baseGeneration;
  }

  // ---- internals ----

  private validKey(keyId: number): boolean {
    return keyId >= 0 && keyId < this.keyCount && Math.floor(keyId) === keyId;
  }

  /** A change of one key: persisted at once, or held in RAM when coalescing. */
  private change(keyId: number, deleted: boolean, data: Uint8Array, offset: number, length: number, version: number, acked: number): number {
    if (!this.mounted) throw new Error('state store: mount() first');
    if (this.coalesceWindowMs > 0) {
      this.applyToRam(keyId, deleted, data, offset, length, version, acked);
      this.flags[keyId] |= flagDirty;
      return stateOk;
    }
    // A plain set record inherits the acknowledged version from the key's earlier records.
    const kind = deleted ? kindDelete : acked !== this.ackedVersions[keyId] ? kindSetAcked : kindSet;
    const result = this.persist(keyId, kind, data, offset, length, version, acked);
    if (result === stateOk) this.applyToRam(keyId, deleted, data, offset, length, version, acked);
    return result;
  }

  private applyToRam(keyId: number, deleted: boolean, data: Uint8Array, offset: number, length: number, version: number, acked: number): void {
    const start = this.valueOffsets[keyId];
    for (let i = 0; i < length; i++) this.values[start + i] = data[offset + i];
    this.valueLengths[keyId] = deleted ? 0 : length;
    this.versions[keyId] = version;
    this.ackedVersions[keyId] = acked;
    this.flags[keyId] = (this.flags[keyId] & ~flagDeleted) | flagPresent | (deleted ? flagDeleted : 0);
  }

  /** Appends one record to the current segment, rotating first when it is full or dirty. */
  private persist(keyId: number, kind: number, data: Uint8Array, offset: number, length: number, version: number, acked: number): number {
    const size = recordBytesFor(kind, length);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.appendBlocked || this.writeOffset + size > this.sectorSize) {
        const rotated = this.rotate();
        if (rotated !== stateOk) return rotated;
      }
      this.encodeRecord(keyId, kind, data, offset, length, version, acked);
      const address = this.baseSector * this.sectorSize + this.writeOffset;
      if (this.flash.prog(address, this.scratch, 0, size) === flashOk) {
        this.writeOffset += size;
        this.recordsWritten++;
        return stateOk;
      }
      // Bytes we believed erased were not, or the sector wore out: never append here again.
      this.appendBlocked = true;
    }
    return stateErrorFlash;
  }

  private encodeRecord(keyId: number, kind: number, data: Uint8Array, offset: number, length: number, version: number, acked: number): number {
    const record = this.scratch;
    record[0] = keyId;
    record[1] = kind | (this.template.fields[keyId].owner === stateOwnerCloud ? recordOwnerCloudBit : 0);
    record[2] = length;
    let at = recordPrefixBytes;
    if (kind !== kindAck) {
      putU32(record, at, version);
      at += 4;
    }
    if (kind !== kindSet) {
      putU32(record, at, acked);
      at += 4;
    }
    for (let i = 0; i < length; i++) record[at + i] = data[offset + i];
    at += length;
    putU32(record, at, this.crc32(record, 0, at));
    return at + recordCrcBytes;
  }

  /** Erases `sector`, writes a header, the live set and the commit word. False if the sector failed. */
  private writeSegment(sector: number): boolean {
    const flash = this.flash;
    const base = sector * this.sectorSize;
    if (flash.erase(sector) !== flashOk) return false;
    let generation = this.baseGeneration + 1;
    const header = this.scratch;
    let headerCrc = 0;
    for (let guard = 0; guard < 4; guard++) {
      this.encodeHeader(generation);
      headerCrc = getU32(header, 8);
      // A commit word of all ones would read as erased: take the next generation instead.
      if (((headerCrc ^ commitMask) >>> 0) !== 0xffffffff) break;
      generation++;
    }
    if (flash.prog(base, header, 0, 12) !== flashOk) return false;
    let offset = segmentHeaderBytes;
    for (let keyId = 0; keyId < this.keyCount; keyId++) {
      const flags = this.flags[keyId];
      if ((flags & flagPresent) === 0) continue;
      const deleted = (flags & flagDeleted) !== 0;
      const size = this.encodeRecord(keyId, deleted ? kindDelete : kindSetAcked, this.values, this.valueOffsets[keyId], deleted ? 0 : this.valueLengths[keyId], this.versions[keyId], this.ackedVersions[keyId]);
      if (flash.prog(base + offset, this.scratch, 0, size) !== flashOk) return false;
      offset += size;
      this.recordsWritten++;
    }
    putU32(header, 0, (headerCrc ^ commitMask) >>> 0);
    if (flash.prog(base + 12, header, 0, 4) !== flashOk) return false;
    for (let keyId = 0; keyId < this.keyCount; keyId++) this.flags[keyId] &= ~(flagDirty | flagAckDirty);
    this.baseSector = sector;
    this.baseGeneration = generation;
    this.writeOffset = offset;
    this.appendBlocked = false;
    return true;
  }

  private encodeHeader(generation: number): void {
    const header = this.scratch;
    header[0] = segmentMagic0;
    header[1] = segmentMagic1;
    header[2] = segmentMagic2;
    header[3] = segmentFormat;
    putU32(header, 4, generation);
    putU32(header, 8, this.crc32(header, 0, 8));
  }

  /** The generation of a committed segment in `sector`, or 0 (no valid committed header). */
  private readCommittedGeneration(sector: number): number {
    const header = this.scratch;
    if (this.flash.read(sector * this.sectorSize, header, 0, segmentHeaderBytes) !== flashOk) return 0;
    if (header[0] !== segmentMagic0 || header[1] !== segmentMagic1 || header[2] !== segmentMagic2 || header[3] !== segmentFormat) return 0;
    const crc = getU32(header, 8);
    if (this.crc32(header, 0, 8) !== crc) return 0;
    if (getU32(header, 12) !== ((crc ^ commitMask) >>> 0)) return 0;
    return getU32(header, 4);
  }

  /** Applies the base segment's records in order; stops at the first invalid one ([STORE-3]). */
  private replayBase(): void {
    const flash = this.flash;
    const record = this.scratch;
    const base = this.baseSector * this.sectorSize;
    let offset = segmentHeaderBytes;
    let clean = true;
    // Each record takes at least 11 bytes, so this loop ends within sectorSize / 11 rounds. One
    // flash read per record: as many bytes as the largest record, or what is left of the sector.
    while (offset < this.sectorSize) {
      const available = this.sectorSize - offset < stateRecordBytesMax ? this.sectorSize - offset : stateRecordBytesMax;
      if (flash.read(base + offset, record, 0, available) !== flashOk) {
        clean = false;
        break;
      }
      if (record[0] === 0xff) break;
      const keyId = record[0];
      const kind = record[1] & 3;
      const length = record[2];
      if (available < recordPrefixBytes || (record[1] & ~(3 | recordOwnerCloudBit)) !== 0 || length > stateStoreValueBytesMax || ((kind === kindDelete || kind === kindAck) && length !== 0)) {
        clean = false;
        break;
      }
      const size = recordBytesFor(kind, length);
      if (size > available || this.crc32(record, 0, size - recordCrcBytes) !== getU32(record, size - recordCrcBytes)) {
        clean = false;
        break;
      }
      offset += size;
      this.applyRecord(keyId, kind, length);
    }
    this.writeOffset = offset;
    if (clean) clean = this.isErased(base + offset, this.sectorSize - offset);
    this.tornTail = !clean;
    // A torn tail cannot be appended to (its bytes are not erased): rotate before the next write.
    this.appendBlocked = !clean;
  }

  /** Applies a record whose CRC is valid; one that no longer fits the template is skipped. */
  private applyRecord(keyId: number, kind: number, length: number): void {
    if (keyId >= this.keyCount) return;
    const record = this.scratch;
    this.recordsReplayed++;
    if (kind === kindAck) {
      const acked = getU32(record, recordPrefixBytes);
      if ((this.flags[keyId] & flagPresent) !== 0 && acked <= this.versions[keyId]) this.ackedVersions[keyId] = acked;
      return;
    }
    const version = getU32(record, recordPrefixBytes);
    const acked = kind === kindSet ? this.ackedVersions[keyId] : getU32(record, recordPrefixBytes + 4);
    const valueStart = recordPrefixBytes + (kind === kindSet ? 4 : 8);
    if (kind !== kindDelete && !fieldAcceptsLength(this.template.fields[keyId], length)) return;
    this.applyToRam(keyId, kind === kindDelete, record, valueStart, length, version, acked);
  }

  private isErased(address: number, length: number): boolean {
    const chunk = this.scratch;
    let done = 0;
    while (done < length) {
      const step = length - done < chunk.length ? length - done : chunk.length;
      if (this.flash.read(address + done, chunk, 0, step) !== flashOk) return false;
      for (let i = 0; i < step; i++) if (chunk[i] !== 0xff) return false;
      done += step;
    }
    return true;
  }
}
