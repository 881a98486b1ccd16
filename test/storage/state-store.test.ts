// The state store's API: typed values, versions and acknowledgements, coalescing, wear levelling,
// worn sectors, and the same store on the Storage-backed Flash over the sandbox's Espruino Storage.
import { describe, expect, it } from 'vitest';
import { StateStore, stateErrorBadValue, stateErrorStale, stateErrorUnknownKey, stateOk } from '../../firmware/core/state-store.ts';
import { intField, stateOwnerDevice, stringField, type StateTemplate } from '../../firmware/core/state-template.ts';
import { StorageFlash, storageSectorSizeFor } from '../../firmware/hal/espruino/storage-flash.ts';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { EspruinoStorage } from '../../hal-mocks/espruino-sandbox/storage.ts';
import { FlashSimulator, PowerLoss } from '../../hal-mocks/flash-simulator.ts';
import { applyOperation, newStore, smallTemplate, snapshot, twentyKeyTemplate, workload } from './state-helpers.ts';

const key = (name: string) => twentyKeyTemplate.fields.findIndex((field) => field.name === name);

function mounted(flash: FlashSimulator, coalesceWindowMs = 0): StateStore {
  const store = newStore(flash, twentyKeyTemplate, coalesceWindowMs);
  expect(store.mount()).toBe(stateOk);
  return store;
}

describe('state store values', () => {
  it('stores every type and reads it back after a remount', () => {
    const flash = new FlashSimulator({ sectorCount: 4 });
    const store = mounted(flash);
    expect(store.setNumber(key('bootCount'), 17)).toBe(stateOk);
    expect(store.setBool(key('alarm'), true)).toBe(stateOk);
    expect(store.setNumber(key('lastHum'), 21.45)).toBe(stateOk);
    expect(store.setNumber(key('lastTemp'), -3.14159)).toBe(stateOk);
    expect(store.setString(key('fw'), 'Küche')).toBe(stateOk);
    expect(store.setBytes(key('calibration'), Uint8Array.from([1, 2, 3]), 0, 3)).toBe(stateOk);
    const again = mounted(flash);
    expect(again.getNumber(key('bootCount'))).toBe(17);
    expect(again.getBool(key('alarm'))).toBe(true);
    expect(again.getNumber(key('lastHum'))).toBe(21.5);
    expect(again.getNumber(key('lastTemp'))).toBe(-3.14);
    expect(again.getString(key('fw'))).toBe('Küche');
    const into = new Uint8Array(8);
    expect(again.readBytes(key('calibration'), into, 0)).toBe(3);
    expect(Array.from(into.subarray(0, 3))).toEqual([1, 2, 3]);
    expect(again.has(key('rssi'))).toBe(false);
    expect(again.getNumber(key('rssi'))).toBeUndefined();
  });

  it('refuses values that do not fit, unknown keys and wrong types, writing nothing', () => {
    const flash = new FlashSimulator({ sectorCount: 2 });
    const store = mounted(flash);
    const programmed = flash.bytesProgrammed;
    expect(store.setNumber(key('bootCount'), 1.5)).toBe(stateErrorBadValue);
    expect(store.setNumber(key('bootCount'), 2 ** 31)).toBe(stateErrorBadValue);
    expect(store.setNumber(key('bootCount'), Number.NaN)).toBe(stateErrorBadValue);
    expect(store.setNumber(key('alarm'), 1)).toBe(stateErrorBadValue);
    expect(store.setString(key('fw'), 'x'.repeat(13))).toBe(stateErrorBadValue);
    expect(store.setString(key('fw'), '€')).toBe(stateErrorBadValue);
    expect(store.setBytes(key('battMv'), new Uint8Array(3), 0, 3)).toBe(stateErrorBadValue);
    expect(store.setNumber(99, 1)).toBe(stateErrorUnknownKey);
    expect(store.setNumber(-1, 1)).toBe(stateErrorUnknownKey);
    expect(flash.bytesProgrammed).toBe(programmed);
  });

  it('rejects a template that does not fit half a sector, or breaks the limits', () => {
    const big: StateTemplate = { fields: Array.from({ length: 40 }, (_, i) => stringField(`s${i}`, stateOwnerDevice, 64)) };
    expect(() => new StateStore(new FlashSimulator({ sectorCount: 2 }), big, { crc32, coalesceWindowMs: 0 })).toThrow(/too large/);
    expect(() => new StateStore(new FlashSimulator({ sectorCount: 2 }), { fields: [intField('a', 0), intField('a', 0)] }, { crc32, coalesceWindowMs: 0 })).toThrow(/duplicate/);
    expect(() => new StateStore(new FlashSimulator({ sectorCount: 1 }), { fields: [intField('a', 0)] }, { crc32, coalesceWindowMs: 0 })).toThrow(/2 sectors/);
  });
});

describe('state store versions and acknowledgements', () => {
  it('tracks what changed since the cloud acknowledged it, across remounts', () => {
    const flash = new FlashSimulator({ sectorCount: 2 });
    const store = mounted(flash);
    const temp = key('lastTemp');
    expect(store.setNumber(temp, 20)).toBe(stateOk);
    expect(store.setNumber(temp, 21)).toBe(stateOk);
    expect(store.version(temp)).toBe(2);
    expect(store.changedCount()).toBe(1);
    expect(store.ack(temp, 1)).toBe(stateOk);
    expect(store.isChanged(temp)).toBe(true);
    expect(store.ack(temp, 2)).toBe(stateOk);
    expect(store.isChanged(temp)).toBe(false);
    expect(store.ack(temp, 3)).toBe(stateErrorStale);
    expect(store.setNumber(key('rssi'), -70)).toBe(stateOk);
    expect(store.setBool(key('door'), true)).toBe(stateOk);
    expect(store.nextChanged(0)).toBe(key('rssi'));
    expect(store.nextChanged(key('rssi') + 1)).toBe(key('door'));
    expect(store.nextChanged(key('door') + 1)).toBe(-1);
    expect(store.ack(key('rssi'), 1)).toBe(stateOk);
    expect(store.ack(key('door'), 1)).toBe(stateOk);
    const again = mounted(flash);
    expect(again.version(temp)).toBe(2);
    expect(again.ackedVersion(temp)).toBe(2);
    expect(again.changedCount()).toBe(0);
    expect(again.setNumber(temp, 22)).toBe(stateOk);
    expect(again.isChanged(temp)).toBe(true);
  });

  it('applies cloud values only when newer: a stale write never overwrites a newer value', () => {
    const flash = new FlashSimulator({ sectorCount: 2 });
    const store = mounted(flash);
    const mode = key('mode');
    const value = Uint8Array.from([5, 0, 0, 0]);
    expect(store.applyCloudValue(mode, value, 0, 4, 3)).toBe(stateOk);
    expect(store.getNumber(mode)).toBe(5);
    expect(store.isChanged(mode)).toBe(false);
    expect(store.applyCloudValue(mode, Uint8Array.from([9, 0, 0, 0]), 0, 4, 3)).toBe(stateErrorStale);
    expect(store.applyCloudValue(mode, Uint8Array.from([9, 0, 0, 0]), 0, 4, 2)).toBe(stateErrorStale);
    expect(store.getNumber(mode)).toBe(5);
    expect(store.applyCloudRemoval(mode, 4)).toBe(stateOk);
    expect(store.has(mode)).toBe(false);
    expect(store.isDeleted(mode)).toBe(true);
    const again = mounted(flash);
    expect(again.isDeleted(mode)).toBe(true);
    expect(again.version(mode)).toBe(4);
  });

  it('keeps a deletion (and its version) through rotations so that sync can report it', () => {
    const flash = new FlashSimulator({ sectorCount: 2, sectorSize: 1024 });
    const store = mounted(flash);
    const counter = key('counter');
    expect(store.setNumber(counter, 1)).toBe(stateOk);
    expect(store.remove(counter)).toBe(stateOk);
    for (let i = 0; i < 200; i++) expect(store.setNumber(key('uptimeSec'), i)).toBe(stateOk);
    expect(store.rotations).toBeGreaterThan(2);
    const again = mounted(flash);
    expect(again.isDeleted(counter)).toBe(true);
    expect(again.version(counter)).toBe(2);
    expect(again.isChanged(counter)).toBe(true);
    expect(again.getNumber(key('uptimeSec'))).toBe(199);
  });
});

describe('state store coalescing', () => {
  it('holds changes in RAM until the window passes, then writes one record per key', () => {
    const flash = new FlashSimulator({ sectorCount: 2 });
    const store = mounted(flash, 1000);
    const programmed = flash.bytesProgrammed;
    for (let i = 0; i < 50; i++) expect(store.setNumber(key('rssi'), -60 - i)).toBe(stateOk);
    expect(store.getNumber(key('rssi'))).toBe(-109);
    expect(store.version(key('rssi'))).toBe(50);
    expect(store.hasPendingWrites()).toBe(true);
    expect(store.tick(0)).toBe(stateOk);
    expect(store.tick(999)).toBe(stateOk);
    expect(flash.bytesProgrammed).toBe(programmed);
    expect(store.tick(1000)).toBe(stateOk);
    expect(store.hasPendingWrites()).toBe(false);
    expect(flash.bytesProgrammed - programmed).toBeLessThan(30);
    const again = mounted(flash);
    expect(again.getNumber(key('rssi'))).toBe(-109);
    expect(again.version(key('rssi'))).toBe(50);
  });

  it('a power cut loses only the pending changes: flash keeps the last flushed value', () => {
    const flash = new FlashSimulator({ sectorCount: 2 });
    const store = mounted(flash, 1000);
    expect(store.setNumber(key('rssi'), -50)).toBe(stateOk);
    expect(store.ack(key('rssi'), 1)).toBe(stateOk);
    expect(store.flush()).toBe(stateOk);
    expect(store.setNumber(key('rssi'), -70)).toBe(stateOk);
    flash.cutPowerAfter(0);
    expect(() => store.flush()).toThrow(PowerLoss);
    flash.restorePower();
    const again = mounted(flash);
    expect(again.getNumber(key('rssi'))).toBe(-50);
    expect(again.ackedVersion(key('rssi'))).toBe(1);
  });
});

describe('state store coalescing against the plain store', () => {
  it('a coalesced store ends, after flush and remount, in the same state as one that writes at once, with fewer bytes programmed', () => {
    const { operations, states } = workload(31, 400, smallTemplate, () => new FlashSimulator({ sectorCount: 3, sectorSize: 512 }), 0.05);
    const flash = new FlashSimulator({ sectorCount: 3, sectorSize: 512 });
    const store = newStore(flash, smallTemplate, 50);
    expect(store.mount()).toBe(stateOk);
    let nowMs = 0;
    for (const operation of operations) {
      expect(applyOperation(store, operation)).toBe(stateOk);
      nowMs += 7;
      expect(store.tick(nowMs)).toBe(stateOk);
    }
    expect(store.flush()).toBe(stateOk);
    const again = newStore(flash, smallTemplate);
    expect(again.mount()).toBe(stateOk);
    expect(snapshot(again)).toBe(states[states.length - 1]);
    const direct = new FlashSimulator({ sectorCount: 3, sectorSize: 512 });
    const plain = newStore(direct, smallTemplate);
    expect(plain.mount()).toBe(stateOk);
    for (const operation of operations) expect(applyOperation(plain, operation)).toBe(stateOk);
    expect(flash.bytesProgrammed).toBeLessThan(direct.bytesProgrammed);
  });
});

describe('state store wear', () => {
  it('spreads erases evenly over the sectors (round robin)', () => {
    const flash = new FlashSimulator({ sectorCount: 8, sectorSize: 1024 });
    const store = mounted(flash);
    for (let i = 0; i < 5000; i++) expect(store.setNumber(key('counter'), i)).toBe(stateOk);
    const counts = Array.from(flash.eraseCounts);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    expect(store.rotations).toBeGreaterThan(70);
  });

  it('skips a sector that wears out and keeps every value', () => {
    const flash = new FlashSimulator({ sectorCount: 4, sectorSize: 1024 });
    flash.wearOut(2, 3);
    const store = mounted(flash);
    for (let i = 0; i < 3000; i++) expect(store.setNumber(key('counter'), i)).toBe(stateOk);
    expect(store.badSectorCount()).toBe(1);
    expect(store.getNumber(key('counter'))).toBe(2999);
    const again = mounted(flash);
    expect(again.getNumber(key('counter'))).toBe(2999);
  });
});

describe('state store on Espruino Storage (StorageFlash over the sandbox emulation)', () => {
  it('survives reopening Storage, and Storage compaction, with every value intact', () => {
    // 6 sectors in 10 pages: erasing a sector leaves its old file as trash, so Storage must
    // compact now and then; this test runs long enough that it does, several times.
    let storage = new EspruinoStorage({ pageBytes: 4096, pageCount: 10 });
    const open = () => new StorageFlash(storage, 'tdm.state.', storageSectorSizeFor(4096), 6);
    let store = newStore(open(), twentyKeyTemplate);
    expect(store.mount()).toBe(stateOk);
    for (let i = 0; i < 3000; i++) {
      expect(store.setNumber(key('counter'), i)).toBe(stateOk);
      if (i % 7 === 0) expect(store.setString(key('fw'), `z${i % 1000}`)).toBe(stateOk);
    }
    const expected = snapshot(store);
    expect(store.rotations).toBeGreaterThan(10);
    const erases = storage.pageEraseCounts().reduce((sum, count) => sum + count, 0);
    expect(erases).toBeGreaterThan(0);
    storage = new EspruinoStorage({ pageBytes: 4096, pageCount: 10, image: storage.imageBytes() });
    store = newStore(open(), twentyKeyTemplate);
    expect(store.mount()).toBe(stateOk);
    expect(snapshot(store)).toBe(expected);
    expect(store.getNumber(key('counter'))).toBe(2999);
  });
});
