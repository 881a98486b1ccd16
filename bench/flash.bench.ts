// `npm run bench -- flash`: flash wear of the state store against the naive Storage.writeJSON of
// the whole state on every update, for a 20-key state and 10,000 single-key updates, with the
// projected lifetime of a 64 KiB area at one update per second (100k erase cycles per sector).
import { StateStore, stateOk } from '../firmware/core/state-store.ts';
import { stateOwnerDevice, stateTypeBool, stateTypeBytes, stateTypeFixed, stateTypeInt, type StateTemplate } from '../firmware/core/state-template.ts';
import type { Flash } from '../firmware/hal/flash.ts';
import { StorageFlash, storageSectorSizeFor } from '../firmware/hal/espruino/storage-flash.ts';
import { crc32 } from '../firmware/protocol/crc32.ts';
import { EspruinoStorage } from '../hal-mocks/espruino-sandbox/storage.ts';
import { FlashSimulator, seededRandom } from '../hal-mocks/flash-simulator.ts';
import { twentyKeyTemplate } from '../test/storage/state-helpers.ts';
import { printTable, round } from './results.ts';

export const summary = 'State store flash wear vs Storage.writeJSON: bytes programmed/erased per update, lifetime at 1 Hz';

const eraseCyclesPerSector = 100_000;
const secondsPerYear = 365.25 * 24 * 3600;
const areaBytes = 64 * 1024;
const pageBytes = 4096;

/**
 * Twenty keys of every type, as a sensor node might hold. All device-owned: the updates measured
 * are the device's (only the cloud changes a cloud-owned key, and its writes carry 4 more bytes).
 */
const template: StateTemplate = { fields: twentyKeyTemplate.fields.map((field) => ({ ...field, owner: stateOwnerDevice })) };

type Value = number | boolean | string | number[];

/** The value the seeded workload gives key `key` at update `step`. */
function valueFor(key: number, random: () => number): Value {
  const field = template.fields[key];
  if (field.type === stateTypeBool) return random() < 0.5;
  if (field.type === stateTypeInt) return Math.floor(random() * 200_000) - 100_000;
  if (field.type === stateTypeFixed) return Math.round((random() * 200 - 100) * 10 ** field.scale) / 10 ** field.scale;
  if (field.type === stateTypeBytes) return Array.from({ length: field.maxLength }, () => Math.floor(random() * 256));
  const length = 1 + Math.floor(random() * field.maxLength);
  return Array.from({ length }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
}

function setValue(store: StateStore, key: number, value: Value): number {
  if (typeof value === 'boolean') return store.setBool(key, value);
  if (typeof value === 'number') return store.setNumber(key, value);
  if (typeof value === 'string') return store.setString(key, value);
  return store.setBytes(key, Uint8Array.from(value), 0, value.length);
}

/** Counts the bytes EspruinoStorage programs (its own counters are per page and per operation). */
function countProgrammedBytes(storage: EspruinoStorage): () => number {
  let bytes = 0;
  const target = storage as unknown as { program(address: number, data: Uint8Array): void };
  const program = target.program.bind(storage);
  target.program = (address, data) => {
    bytes += data.length;
    program(address, data);
  };
  return () => bytes;
}

interface Wear {
  bytesProgrammedPerUpdate: number;
  bytesErasedPerUpdate: number;
  erasesPerUpdate: number;
}

/** The store: all keys set once, then `updates` single-key updates; wear counted over the updates only. */
function runStore(flash: Flash, updates: number, counters: () => { programmed: number; erased: number }): Wear & { rotations: number } {
  const store = new StateStore(flash, template, { crc32, coalesceWindowMs: 0 });
  if (store.mount() !== stateOk) throw new Error('store did not mount');
  const random = seededRandom(2026);
  for (let key = 0; key < template.fields.length; key++) {
    if (setValue(store, key, valueFor(key, random)) !== stateOk) throw new Error('initial set failed');
  }
  const before = counters();
  const rotationsBefore = store.rotations;
  for (let i = 0; i < updates; i++) {
    const key = Math.floor(random() * template.fields.length);
    if (setValue(store, key, valueFor(key, random)) !== stateOk) throw new Error(`update ${i} failed`);
  }
  const after = counters();
  return {
    bytesProgrammedPerUpdate: (after.programmed - before.programmed) / updates,
    bytesErasedPerUpdate: (after.erased - before.erased) / updates,
    erasesPerUpdate: (after.erased - before.erased) / flash.sectorSize / updates,
    rotations: store.rotations - rotationsBefore,
  };
}

/** The naive way: Storage.writeJSON of the whole state object on every update, same 64 KiB. */
function runWriteJson(updates: number): Wear {
  const storage = new EspruinoStorage({ pageBytes, pageCount: areaBytes / pageBytes });
  const programmed = countProgrammedBytes(storage);
  const random = seededRandom(2026);
  const state: Record<string, Value> = {};
  for (let key = 0; key < template.fields.length; key++) state[template.fields[key].name] = valueFor(key, random);
  storage.writeJSON('state.json', state);
  const erasedBytes = () => storage.pageEraseCounts().reduce((sum, count) => sum + count, 0) * pageBytes;
  const programmedBefore = programmed();
  const erasedBefore = erasedBytes();
  for (let i = 0; i < updates; i++) {
    const key = Math.floor(random() * template.fields.length);
    state[template.fields[key].name] = valueFor(key, random);
    storage.writeJSON('state.json', state);
  }
  const erased = erasedBytes() - erasedBefore;
  return { bytesProgrammedPerUpdate: (programmed() - programmedBefore) / updates, bytesErasedPerUpdate: erased / updates, erasesPerUpdate: erased / pageBytes / updates };
}

function lifetimeYears(sectors: number, erasesPerUpdate: number): number {
  return (sectors * eraseCyclesPerSector) / erasesPerUpdate / secondsPerYear;
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const updates = options.quick ? 2000 : 10_000;
  const sectors = areaBytes / pageBytes;

  const simulator = new FlashSimulator({ sectorCount: sectors, sectorSize: pageBytes });
  const tandem = runStore(simulator, updates, () => ({ programmed: simulator.bytesProgrammed, erased: simulator.bytesErased }));
  const wearSpread = Math.max(...simulator.eraseCounts) - Math.min(...simulator.eraseCounts);

  // The same store on Espruino Storage (StorageFlash): 16 sector files in a 384 KB Storage.
  // Every sector erase leaves trash that Storage's compaction erases later: real page erases.
  // Compaction comes only every ~80 rotations, so this run is ten times longer to see several.
  const storageUpdates = updates * 10;
  const storagePages = 96;
  const storage = new EspruinoStorage({ pageBytes, pageCount: storagePages });
  const storageProgrammed = countProgrammedBytes(storage);
  const onStorage = runStore(new StorageFlash(storage, 'tdm.state.', storageSectorSizeFor(pageBytes), sectors), storageUpdates, () => ({
    programmed: storageProgrammed(),
    erased: storage.pageEraseCounts().reduce((sum, count) => sum + count, 0) * pageBytes,
  }));

  const naive = runWriteJson(updates);
  const tandemLifetime = lifetimeYears(sectors, tandem.erasesPerUpdate);
  const naiveLifetime = lifetimeYears(sectors, naive.erasesPerUpdate);
  const ratio = naive.bytesErasedPerUpdate / tandem.bytesErasedPerUpdate;

  printTable(`State store wear: 20 keys, ${updates} single-key updates, 64 KiB area, ${eraseCyclesPerSector} erase cycles per sector`, ['approach', 'bytes programmed/update', 'bytes erased/update', 'lifetime at 1 Hz (years)'], [
    ['tandem state store (flash simulator)', round(tandem.bytesProgrammedPerUpdate, 1), round(tandem.bytesErasedPerUpdate, 1), round(tandemLifetime, 1)],
    [`tandem on Espruino Storage (${(storagePages * pageBytes) / 1024} KB, ${storageUpdates} updates, compaction counted)`, round(onStorage.bytesProgrammedPerUpdate, 1), round(onStorage.bytesErasedPerUpdate, 1), '-'],
    ['Storage.writeJSON whole state (64 KiB Storage)', round(naive.bytesProgrammedPerUpdate, 1), round(naive.bytesErasedPerUpdate, 1), round(naiveLifetime, 2)],
  ]);
  const storageErases = storage.pageEraseCounts();
  const storageLifetime = (storageErases.length * eraseCyclesPerSector) / (onStorage.erasesPerUpdate * secondsPerYear);
  console.log(`erased bytes per update: writeJSON / tandem = ${round(ratio, 1)}x (target >= 15x); lifetime target >= 10 years; rotations ${tandem.rotations}, erase spread across sectors ${wearSpread}`);
  console.log(`on Storage: ${onStorage.rotations} rotations, page erases per page ${Math.min(...storageErases)}..${Math.max(...storageErases)}; that Storage would last ${round(storageLifetime, 1)} years at 1 Hz (wear spread over all pages by compaction)`);

  return {
    updates,
    keys: template.fields.length,
    areaBytes,
    eraseCyclesPerSector,
    bytesProgrammedPerUpdate: { tandem: round(tandem.bytesProgrammedPerUpdate, 2), writeJSON: round(naive.bytesProgrammedPerUpdate, 2), tandemOnStorage: round(onStorage.bytesProgrammedPerUpdate, 2) },
    bytesErasedPerUpdate: { tandem: round(tandem.bytesErasedPerUpdate, 2), writeJSON: round(naive.bytesErasedPerUpdate, 2), tandemOnStorage: round(onStorage.bytesErasedPerUpdate, 2) },
    erasedRatioWriteJsonOverTandem: round(ratio, 2),
    lifetimeYearsAt1Hz: round(tandemLifetime, 2),
    writeJsonLifetimeYearsAt1Hz: round(naiveLifetime, 3),
    rotations: tandem.rotations,
    storageUpdates,
    storageBytes: storagePages * pageBytes,
    storageLifetimeYearsAt1Hz: round(storageLifetime, 1),
    eraseSpreadSectors: wearSpread,
    baseline: 'writeJSON measured on hal-mocks/espruino-sandbox EspruinoStorage (Espruino Storage semantics, page erases counted), same 64 KiB',
  };
}
