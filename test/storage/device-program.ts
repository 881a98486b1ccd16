// A device program exercising the event ring and the state store as a board runs them: bundled by
// the firmware build (esbuild + the Espruino gate), run in the sandbox by the tests and in a real
// Espruino binary by `bench ring` when ESPRUINO_BIN is set. It prints one `RESULT {json}` line.
// Build these with `wrap: true`: unwrapped, their minified top-level names could take an Espruino
// global's name (E), which the build refuses.
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');

export interface DeviceProgramOptions {
  /** Events appended to the ring (and pushed to the naive array cache). */
  events: number;
  /** Timed rounds of ring and naive appends (the best is kept). */
  rounds: number;
  /** Single-key state updates on Storage. */
  stateUpdates: number;
}

/** Figures the program prints. */
export interface DeviceResult {
  ringAppendsPerSec: number;
  naiveAppendsPerSec: number;
  ringJsVarsPerEvent: number;
  ringAppendsWithEncodePerSec: number;
  ringSliceAppendsPerSec: number;
  ringFullAppendsPerSec: number;
  naiveJsVarsPerEvent: number;
  ringEventsHeld: number;
  ringReadBack: number;
  stateUpdatesPerSec: number;
  stateRemountOk: boolean;
  /** Replay of the store's segment at boot, after the run's updates. */
  stateMountMs: number;
  jsVarsTotal: number;
}

export function deviceProgramSource(options: DeviceProgramOptions): string {
  const path = (file: string) => JSON.stringify(join(root, file));
  return `
import { EventCache, eventCacheDefaults } from ${path('firmware/core/event-cache.ts')};
import { StateStore, stateOk } from ${path('firmware/core/state-store.ts')};
import { intField, fixedField, boolField, stringField, stateOwnerDevice, stateOwnerCloud } from ${path('firmware/core/state-template.ts')};
import { StorageFlash } from ${path('firmware/hal/espruino/storage-flash.ts')};
declare const process: { memory(gc?: boolean): { usage: number; total: number } };
declare const E: { CRC32(data: Uint8Array): number };
declare function getTime(): number;
declare function quit(): void;
declare function require(name: 'Storage'): any;

const events = ${options.events};
const rounds = ${options.rounds};
const stateUpdates = ${options.stateUpdates};

// Runs from a timer once boot is over, as a firmware's main work does.
function main(): void {

// The ring holds every event of the run (12 bytes each: 10 of event, 2 of length). The event is
// encoded once: the codec's work is measured apart (appendWithEncode), as the naive cache defers
// its encoding to sync time.
const scratch = new Uint8Array(10);
const view = new DataView(scratch.buffer, 0, 10);
function encode(t: number, temp: number, hum: number, batt: number): void {
  view.setUint32(0, t, true);
  view.setInt16(4, temp, true);
  view.setUint16(6, hum, true);
  view.setUint16(8, batt, true);
}
encode(1, 215, 400, 3300);
const cache = new EventCache({ capacityBytes: events * 12 + 64, overflowPolicy: 0, firstSeq: 1 });
// Warm up (code parsed, scratch used) before measuring memory.
cache.append(scratch, 0, 10);
cache.ack(1);
const ringMemoryBefore = process.memory(true).usage;
let started = getTime();
for (let i = 0; i < events; i++) cache.append(scratch, 0, 10);
let ringSeconds = getTime() - started;
const ringMemoryAfter = process.memory(true).usage;
const out = new Uint8Array(2048);
const readBack = cache.readBatch(0, out, 0, 2048) > 0 ? cache.batch.count : 0;
const held = cache.count;

// Timings on a shared machine are noisy: the best of several rounds, ring and naive interleaved.
const naive: any[] = [];
let naiveSeconds = 1e9;
let naiveMemoryBefore = 0;
let naiveMemoryAfter = 0;
for (let round = 0; round < rounds; round++) {
  cache.ack(cache.nextSeq);
  started = getTime();
  for (let i = 0; i < events; i++) cache.append(scratch, 0, 10);
  const seconds = getTime() - started;
  if (seconds < ringSeconds) ringSeconds = seconds;
  naive.splice(0, naive.length);
  if (round === 0) naiveMemoryBefore = process.memory(true).usage;
  started = getTime();
  for (let i = 0; i < events; i++) naive.push({ t: i, temp: 21.5, hum: 40, batt: 3.3 });
  const naiveRound = getTime() - started;
  if (naiveRound < naiveSeconds) naiveSeconds = naiveRound;
  if (round === 0) naiveMemoryAfter = process.memory(true).usage;
}
naive.splice(0, naive.length);

// Codec style: the event is the first 10 bytes of a larger scratch (a short-lived view per append).
const codecScratch = new Uint8Array(64);
codecScratch.set(scratch, 0);
let sliceSeconds = 1e9;
for (let round = 0; round < rounds; round++) {
  cache.ack(cache.nextSeq);
  started = getTime();
  for (let i = 0; i < events; i++) cache.append(codecScratch, 0, 10);
  const seconds = getTime() - started;
  if (seconds < sliceSeconds) sliceSeconds = seconds;
}

// The same with the encoding in the loop.
cache.ack(cache.nextSeq);
started = getTime();
for (let i = 0; i < events; i++) {
  encode(i, 215, 400, 3300);
  cache.append(scratch, 0, 10);
}
const encodeSeconds = getTime() - started;

// A full 4 KiB ring: every append drops the oldest event first.
const full = new EventCache(eventCacheDefaults());
for (let i = 0; i < 400; i++) full.append(scratch, 0, 10);
started = getTime();
for (let i = 0; i < events; i++) full.append(scratch, 0, 10);
const fullSeconds = getTime() - started;

// The state store on Storage: 4 sector files, E.CRC32 injected.
const template = { fields: [intField('counter', stateOwnerDevice), fixedField('temp', stateOwnerDevice, 1), boolField('led', stateOwnerCloud), stringField('name', stateOwnerDevice, 12)] };
const crc = function (data: Uint8Array, offset: number, length: number): number { return E.CRC32(data.subarray(offset, offset + length)); };
const flash = new StorageFlash(require('Storage'), 'tdm.bench.', 4060, 4);
const store = new StateStore(flash, template, { crc32: crc, coalesceWindowMs: 0 });
let stateOkCount = store.mount() === stateOk ? 1 : 0;
store.setString(3, 'bench');
started = getTime();
for (let i = 0; i < stateUpdates; i++) {
  if (store.setNumber(i % 2, i) === stateOk) stateOkCount++;
}
const stateSeconds = getTime() - started;
const again = new StateStore(new StorageFlash(require('Storage'), 'tdm.bench.', 4060, 4), template, { crc32: crc, coalesceWindowMs: 0 });
started = getTime();
const remountResult = again.mount();
const mountSeconds = getTime() - started;
const remountOk = remountResult === stateOk && again.getNumber(0) === stateUpdates - 2 + (stateUpdates % 2) && again.getString(3) === 'bench' && stateOkCount === stateUpdates + 1;
if (!remountOk) console.log('REMOUNT ' + remountResult + ' ' + again.getNumber(0) + ' ' + again.getString(3) + ' ' + stateOkCount + ' ' + store.getNumber(0));

console.log('RESULT ' + JSON.stringify({
  ringAppendsPerSec: events / ringSeconds,
  naiveAppendsPerSec: events / naiveSeconds,
  ringJsVarsPerEvent: (ringMemoryAfter - ringMemoryBefore) / held,
  ringAppendsWithEncodePerSec: events / encodeSeconds,
  ringSliceAppendsPerSec: events / sliceSeconds,
  ringFullAppendsPerSec: events / fullSeconds,
  naiveJsVarsPerEvent: (naiveMemoryAfter - naiveMemoryBefore) / events,
  ringEventsHeld: held,
  ringReadBack: readBack,
  stateUpdatesPerSec: stateUpdates / stateSeconds,
  stateRemountOk: remountOk,
  stateMountMs: mountSeconds * 1000,
  jsVarsTotal: process.memory(true).total,
}));
quit();
}
setTimeout(main, 1);
`;
}

/** The figures from the program's console lines, or undefined when it printed none. */
export function parseDeviceResult(lines: string[]): DeviceResult | undefined {
  const line = lines.find((candidate) => candidate.startsWith('RESULT '));
  return line === undefined ? undefined : (JSON.parse(line.slice('RESULT '.length)) as DeviceResult);
}

/**
 * A program that only appends (`ring`), only pushes objects (`naive`), or does nothing (`startup`),
 * `rounds` times `events`. Its CPU time, less the startup run's, is the cost of the appends alone:
 * a measure that other load on the machine does not skew, unlike wall-clock time.
 */
export function cpuProgramSource(kind: 'ring' | 'naive' | 'startup', events: number, rounds: number): string {
  const path = (file: string) => JSON.stringify(join(root, file));
  return `
import { EventCache } from ${path('firmware/core/event-cache.ts')};
declare function quit(): void;
const kind = ${JSON.stringify(kind)};
const events = ${events};
const rounds = ${kind === 'startup' ? 0 : rounds};
const scratch = new Uint8Array(10);
scratch[0] = 1;
const cache = new EventCache({ capacityBytes: events * 12 + 64, overflowPolicy: 0, firstSeq: 1 });
const naive: any[] = [];
function main(): void {
  for (let round = 0; round < rounds; round++) {
    if (kind === 'ring') {
      cache.ack(cache.nextSeq);
      for (let i = 0; i < events; i++) cache.append(scratch, 0, 10);
    } else {
      naive.splice(0, naive.length);
      for (let i = 0; i < events; i++) naive.push({ t: i, temp: 21.5, hum: 40, batt: 3.3 });
    }
  }
  console.log('DONE ' + cache.count + ' ' + naive.length);
  quit();
}
setTimeout(main, 1);
`;
}
