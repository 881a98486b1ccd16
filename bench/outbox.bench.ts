// `npm run bench -- outbox`: the durable event cache's flash tier. Events per second through it,
// flash bytes programmed and erased per event, the projected lifetime of a 128 KiB area at one
// event per second (100k erase cycles per sector), and reboot recovery (mount) with 10,000 events
// queued; on the flash simulator and on Espruino Storage semantics (StorageFlash over the
// sandbox's EspruinoStorage), and, when ESPRUINO_BIN points at an Espruino binary, inside it on its
// real Storage (the bundle built by the firmware build and its Espruino gate).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createEventSpill, eventSpillDefaults, spillOk, type EventSpill } from '../firmware/core/event-spill.ts';
import type { Flash } from '../firmware/hal/flash.ts';
import { StorageFlash, storageSectorSizeFor } from '../firmware/hal/espruino/storage-flash.ts';
import { crc32 } from '../firmware/protocol/crc32.ts';
import { spillAreaBytesDefault, spillFlushDelayMs } from '../firmware/protocol/limits.ts';
import { EspruinoStorage } from '../hal-mocks/espruino-sandbox/storage.ts';
import { FlashSimulator } from '../hal-mocks/flash-simulator.ts';
import { RealEspruino } from '../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../scripts/build/build-firmware.ts';
import { printTable, round } from './results.ts';

export const summary = 'Event spill tier: events/sec, flash bytes programmed/erased per event, lifetime of 128 KiB at 1 Hz, recovery with 10,000 queued';

const eraseCyclesPerSector = 100_000;
const secondsPerYear = 365.25 * 24 * 3600;
const sectorBytes = 4096;
const sectors = spillAreaBytesDefault / sectorBytes;
/** A sensor event as the template codec encodes it ({t, temp, hum, batt}: 10 bytes, as in bench/ring). */
const eventBytes = 10;
/** A sync every minute acknowledges everything sent (one batch per sync at 1 Hz). */
const syncEverySec = 60;

function event(seq: number, into: Uint8Array): void {
  for (let i = 0; i < eventBytes; i++) into[i] = (seq >>> (i % 4) * 8) + i;
}

function newTier(flash: Flash, flushDelayMs = spillFlushDelayMs): EventSpill {
  const options = eventSpillDefaults(crc32);
  options.flushDelayMs = flushDelayMs;
  const spill = createEventSpill(flash, options);
  spill.mount(1);
  return spill;
}

/** Throughput: events stored as fast as possible, a sync batch acknowledged every 80 events. */
function throughput(flash: Flash, events: number): number {
  const spill = newTier(flash);
  const data = new Uint8Array(eventBytes);
  const started = performance.now();
  for (let seq = 1; seq <= events; seq++) {
    event(seq, data);
    if (!spill.store(seq, data, 0, eventBytes)) throw new Error('store refused');
    if (seq % 80 === 0) spill.ack(seq - 40);
  }
  spill.flush();
  return events / ((performance.now() - started) / 1000);
}

interface Wear {
  bytesProgrammedPerEvent: number;
  bytesErasedPerEvent: number;
  maxEraseCount: number;
  minEraseCount: number;
}

/**
 * One event per (virtual) second, a tick every second, every event acknowledged at each minute's
 * sync; `flushDelayMs` 0 is write-through (every event programmed as it is spilled).
 */
function wearAt1Hz(events: number, flushDelayMs: number): Wear {
  const flash = new FlashSimulator({ sectorSize: sectorBytes, sectorCount: sectors });
  const spill = newTier(flash, flushDelayMs);
  const data = new Uint8Array(eventBytes);
  for (let seq = 1; seq <= events; seq++) {
    event(seq, data);
    if (!spill.store(seq, data, 0, eventBytes)) throw new Error('store refused');
    if (spill.tick(seq * 1000) !== spillOk) throw new Error('flush failed');
    if (seq % syncEverySec === 0) spill.ack(seq);
  }
  if (spill.takeDropped() !== 0) throw new Error('events dropped');
  return {
    bytesProgrammedPerEvent: flash.bytesProgrammed / events,
    bytesErasedPerEvent: flash.bytesErased / events,
    maxEraseCount: Math.max(...flash.eraseCounts),
    minEraseCount: Math.min(...flash.eraseCounts),
  };
}

/** Mount time with `queued` unacknowledged events on flash: the median of `repeats` mounts. */
function recovery(flash: Flash, queued: number, repeats: number): { ms: number; recovered: number } {
  const spill = newTier(flash);
  const data = new Uint8Array(eventBytes);
  for (let seq = 1; seq <= queued; seq++) {
    event(seq, data);
    if (!spill.store(seq, data, 0, eventBytes)) throw new Error('store refused');
  }
  spill.flush();
  if (spill.takeDropped() !== 0) throw new Error(`${queued} events do not fit the area`);
  const times: number[] = [];
  let recovered = 0;
  for (let i = 0; i < repeats; i++) {
    const again = createEventSpill(flash, eventSpillDefaults(crc32));
    const started = performance.now();
    recovered = again.mount(2 + i);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], recovered };
}

interface DeviceFigures {
  eventsPerSec: number;
  flushedMs: number;
  mountMs: number;
  recovered: number;
  jsVarsPerEvent: number;
  drainedEventsPerSec: number;
}

/** A device program: the tier on require("Storage") (32 sector files), E.CRC32 injected; prints RESULT {json}. */
function deviceProgram(queued: number): string {
  const path = (file: string) => JSON.stringify(resolve(import.meta.dirname, '..', file));
  return `
import { createEventSpill, eventSpillDefaults } from ${path('firmware/core/event-spill.ts')};
import { StorageFlash } from ${path('firmware/hal/espruino/storage-flash.ts')};
declare const process: { memory(gc?: boolean): { usage: number } };
declare const E: { CRC32(data: Uint8Array): number };
declare function getTime(): number;
declare function quit(): void;
declare function require(name: 'Storage'): any;
function main(): void {
  const crc = function (data: Uint8Array, offset: number, length: number): number { return E.CRC32(data.subarray(offset, offset + length)); };
  const options = eventSpillDefaults(crc);
  const spill = createEventSpill(new StorageFlash(require('Storage'), 'tdm.ev.', ${storageSectorSizeFor(sectorBytes)}, ${sectors}), options);
  spill.mount(1);
  const data = new Uint8Array(${eventBytes});
  const memoryBefore = process.memory(true).usage;
  const started = getTime();
  let stored = 0;
  for (let seq = 1; seq <= ${queued}; seq++) {
    data[0] = seq;
    data[1] = seq >> 8;
    if (!spill.store(seq, data, 0, ${eventBytes})) break;
    stored++;
  }
  spill.flush();
  const storedAt = getTime();
  const memoryAfter = process.memory(true).usage;
  const again = createEventSpill(new StorageFlash(require('Storage'), 'tdm.ev.', ${storageSectorSizeFor(sectorBytes)}, ${sectors}), options);
  const mountStarted = getTime();
  const recovered = again.mount(2);
  const mounted = getTime();
  // Drain the backlog as sync would: 960-byte batches, each acknowledged.
  const batchBuffer = new Uint8Array(960);
  const batch = { firstSeq: 0, count: 0, bytes: 0 };
  let drained = 0;
  for (let round = 0; round < 100000 && again.backlogEpoch() !== 0; round++) {
    batch.firstSeq = 0; batch.count = 0; batch.bytes = 0;
    again.readBacklog(0, batchBuffer, 0, 960, batch);
    if (batch.count === 0) break;
    drained += again.ackBacklog(1, batch.firstSeq + batch.count - 1);
  }
  const drainedAt = getTime();
  console.log('RESULT ' + JSON.stringify({
    eventsPerSec: stored / (storedAt - started),
    flushedMs: (storedAt - started) * 1000,
    mountMs: (mounted - mountStarted) * 1000,
    recovered: recovered,
    jsVarsPerEvent: (memoryAfter - memoryBefore) / stored,
    drainedEventsPerSec: drained / (drainedAt - mounted),
  }));
  quit();
}
setTimeout(main, 1);
`;
}

async function espruinoFigures(binary: string, queued: number): Promise<DeviceFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-outbox-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, deviceProgram(queued));
    const built = await buildFirmware({ entry, outFile: join(dir, 'outbox.js'), quiet: true, wrap: true });
    if (built.failures.length > 0) throw new Error(`bench outbox: the device program did not build:\n${built.failures.join('\n')}`);
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath: join(dir, 'outbox.js'), onConsoleLine: (line) => lines.push(line) });
    const exited = device.start();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<number>((resolveTimeout) => (timer = setTimeout(() => resolveTimeout(-1), 180_000)));
    const code = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    await device.stop();
    const line = lines.find((candidate) => candidate.startsWith('RESULT '));
    if (line === undefined) throw new Error(`bench outbox: Espruino printed no result (exit ${code}):\n${lines.slice(-10).join('\n')}`);
    return JSON.parse(line.slice('RESULT '.length)) as DeviceFigures;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const events = options.quick ? 50_000 : 300_000;
  const wearEvents = options.quick ? 40_000 : 200_000;

  const simulatorRate = throughput(new FlashSimulator({ sectorSize: sectorBytes, sectorCount: sectors }), events);
  const storage = new EspruinoStorage({ pageBytes: sectorBytes, pageCount: sectors + 8 });
  const storageSectorBytes = storageSectorSizeFor(sectorBytes);
  const storageRate = throughput(new StorageFlash(storage, 'tdm.ev.', storageSectorBytes, sectors), Math.floor(events / 5));

  const wear = wearAt1Hz(wearEvents, spillFlushDelayMs);
  // Round-robin sectors wear evenly, so the area lasts until every sector has had its cycles.
  const lifetimeYears = (w: Wear): number => (sectors * eraseCyclesPerSector * sectorBytes) / w.bytesErasedPerEvent / secondsPerYear;
  const lifetimeYearsAt1Hz = lifetimeYears(wear);
  const writeThrough = wearAt1Hz(wearEvents, 0);

  const simulatorRecovery = recovery(new FlashSimulator({ sectorSize: sectorBytes, sectorCount: sectors }), 10_000, 9);
  const storageRecovery = recovery(new StorageFlash(new EspruinoStorage({ pageBytes: sectorBytes, pageCount: sectors + 8 }), 'tdm.ev.', storageSectorBytes, sectors), 10_000, 5);
  if (simulatorRecovery.recovered !== 10_000 || storageRecovery.recovered !== 10_000) throw new Error('mount did not recover every event');

  const binary = process.env.ESPRUINO_BIN;
  const device = binary === undefined || binary === '' ? undefined : await espruinoFigures(binary, 10_000);
  if (device !== undefined && device.recovered !== 10_000) throw new Error(`bench outbox: Espruino mount recovered ${device.recovered} of 10000`);

  printTable(`Event spill tier: ${eventBytes}-byte events, 128 KiB area (${sectors} x ${sectorBytes} B), flush after ${spillFlushDelayMs} ms, sync every ${syncEverySec} s`, ['figure', 'flash simulator', 'Espruino Storage (sandbox)'], [
    ['events/sec through the tier', Math.round(simulatorRate), Math.round(storageRate)],
    ['mount with 10,000 queued (ms)', round(simulatorRecovery.ms, 2), round(storageRecovery.ms, 2)],
    ['bytes programmed/event at 1 Hz', round(wear.bytesProgrammedPerEvent, 2), '-'],
    ['bytes erased/event at 1 Hz', round(wear.bytesErasedPerEvent, 2), '-'],
    ['erases per sector (min..max)', `${wear.minEraseCount}..${wear.maxEraseCount}`, '-'],
    ['lifetime at 1 Hz (years)', round(lifetimeYearsAt1Hz, 1), '-'],
  ]);
  printTable('The same, write-through (eventFlashFlushMs 0: every event programmed as it is spilled)', ['figure', 'flash simulator'], [
    ['bytes programmed/event at 1 Hz', round(writeThrough.bytesProgrammedPerEvent, 2)],
    ['bytes erased/event at 1 Hz', round(writeThrough.bytesErasedPerEvent, 2)],
    ['lifetime at 1 Hz (years)', round(lifetimeYears(writeThrough), 1)],
  ]);
  if (device !== undefined) {
    printTable(`Inside Espruino (${binary}), real Storage, 10,000 events of ${eventBytes} bytes`, ['figure', 'value'], [
      ['events/sec stored (flush included)', Math.round(device.eventsPerSec)],
      ['mount with 10,000 queued (ms)', round(device.mountMs, 1)],
      ['backlog drained and acked (events/sec)', Math.round(device.drainedEventsPerSec)],
      ['JsVars per stored event', round(device.jsVarsPerEvent, 3)],
    ]);
  } else {
    console.log('(set ESPRUINO_BIN to an Espruino binary to measure inside the interpreter too)');
  }
  console.log(`targets: lifetime >= 20 years (${lifetimeYearsAt1Hz >= 20 ? 'met' : 'MISSED'}), recovery < 1000 ms (${simulatorRecovery.ms < 1000 && storageRecovery.ms < 1000 ? 'met' : 'MISSED'})`);

  return {
    lifetimeYearsAt1Hz: round(lifetimeYearsAt1Hz, 1),
    bytesErasedPerEvent: round(wear.bytesErasedPerEvent, 2),
    bytesProgrammedPerEvent: round(wear.bytesProgrammedPerEvent, 2),
    eventsPerSec: Math.round(simulatorRate),
    recoveryMsAt10000: round(simulatorRecovery.ms, 2),
    storage: { eventsPerSec: Math.round(storageRate), recoveryMsAt10000: round(storageRecovery.ms, 2) },
    writeThrough: {
      lifetimeYearsAt1Hz: round(lifetimeYears(writeThrough), 1),
      bytesErasedPerEvent: round(writeThrough.bytesErasedPerEvent, 2),
      bytesProgrammedPerEvent: round(writeThrough.bytesProgrammedPerEvent, 2),
    },
    ...(device === undefined ? {} : { espruino: { eventsPerSec: Math.round(device.eventsPerSec), recoveryMsAt10000: round(device.mountMs, 1), drainedEventsPerSec: Math.round(device.drainedEventsPerSec), jsVarsPerEvent: round(device.jsVarsPerEvent, 3) } }),
    eventBytes,
    areaBytes: spillAreaBytesDefault,
    eventsMeasured: { throughput: events, wear: wearEvents },
  };
}
