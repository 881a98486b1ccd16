// `npm run bench -- ring`: the event ring against a naive cache that pushes one object per event
// into an array. In Node always; inside a real Espruino binary when ESPRUINO_BIN points at one
// (appends per second and JsVars per cached event from process.memory()), where it matters.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventCache, eventCacheDefaults } from '../firmware/core/event-cache.ts';
import { RealEspruino } from '../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../scripts/build/build-firmware.ts';
import { deviceProgramSource, parseDeviceResult, type DeviceResult } from '../test/storage/device-program.ts';
import { printTable } from './results.ts';

export const summary = 'Event ring vs naive object array: appends/sec and memory per event (Node; real Espruino with ESPRUINO_BIN)';

interface NaiveEvent {
  t: number;
  temp: number;
  hum: number;
  batt: number;
}

function round(value: number, digits: number): number {
  return Math.round(value * 10 ** digits) / 10 ** digits;
}

/** Node: the same 10-byte events {t, temp, hum, batt}, encoded into one scratch, then appended. */
function nodeFigures(events: number): { appendsPerSec: number; naiveAppendsPerSec: number; ringHeapBytesPerEvent: number; naiveHeapBytesPerEvent: number } {
  const scratch = new Uint8Array(10);
  const view = new DataView(scratch.buffer);
  const cache = new EventCache(eventCacheDefaults());
  const heapBefore = process.memoryUsage().heapUsed;
  let started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) {
    view.setUint32(0, i, true);
    view.setInt16(4, 215 + (i % 7), true);
    view.setUint16(6, 400 + (i % 3), true);
    view.setUint16(8, 3300, true);
    cache.append(scratch, 0, 10);
  }
  const ringSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ringHeap = Math.max(0, process.memoryUsage().heapUsed - heapBefore);
  const naive: NaiveEvent[] = [];
  const naiveHeapBefore = process.memoryUsage().heapUsed;
  started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) naive.push({ t: i, temp: 21.5 + (i % 7) / 10, hum: 40 + (i % 3), batt: 3.3 });
  const naiveSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const naiveHeap = Math.max(0, process.memoryUsage().heapUsed - naiveHeapBefore);
  return {
    appendsPerSec: Math.round(events / ringSeconds),
    naiveAppendsPerSec: Math.round(events / naiveSeconds),
    ringHeapBytesPerEvent: round(ringHeap / events, 2),
    naiveHeapBytesPerEvent: round(naiveHeap / naive.length, 1),
  };
}

/** Builds the device program (firmware build + Espruino gate) and runs it in the binary. */
async function espruinoFigures(binary: string, events: number, stateUpdates: number): Promise<DeviceResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-ring-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, deviceProgramSource({ events, stateUpdates }));
    const built = await buildFirmware({ entry, outFile: join(dir, 'ring.js'), quiet: true });
    if (built.failures.length > 0) throw new Error(`bench ring: the device program did not build:\n${built.failures.join('\n')}`);
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath: join(dir, 'ring.js'), onConsoleLine: (line) => lines.push(line) });
    const exited = device.start();
    const timeout = new Promise<number>((resolveTimeout) => setTimeout(() => resolveTimeout(-1), 120_000));
    const code = await Promise.race([exited, timeout]);
    await device.stop();
    const result = parseDeviceResult(lines);
    if (result === undefined) throw new Error(`bench ring: Espruino printed no result (exit ${code}):\n${lines.slice(-10).join('\n')}`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const events = options.quick ? 100_000 : 1_000_000;
  const node = nodeFigures(events);
  const rows: (string | number)[][] = [
    ['Node: event ring (4 KiB, 10-byte events)', node.appendsPerSec, node.ringHeapBytesPerEvent, '-'],
    ['Node: naive array of {t, temp, hum, batt}', node.naiveAppendsPerSec, node.naiveHeapBytesPerEvent, '-'],
  ];
  const figures: Record<string, unknown> = { events, node };

  const binary = process.env.ESPRUINO_BIN ?? '';
  if (binary !== '' && existsSync(binary)) {
    // The naive cache runs out of memory near 2,000 events on an ESP32-format build: stay below.
    const deviceEvents = options.quick ? 300 : 1000;
    const device = await espruinoFigures(binary, deviceEvents, options.quick ? 100 : 500);
    rows.push(
      [`Espruino: event ring (${deviceEvents} events)`, round(device.ringAppendsPerSec, 0), '-', round(device.ringJsVarsPerEvent, 2)],
      [`Espruino: naive array (${deviceEvents} events)`, round(device.naiveAppendsPerSec, 0), '-', round(device.naiveJsVarsPerEvent, 2)],
      ['Espruino: state store updates on Storage', round(device.stateUpdatesPerSec, 0), '-', '-'],
    );
    figures.espruino = {
      binary: 'ESPRUINO_BIN',
      events: deviceEvents,
      appendsPerSec: round(device.ringAppendsPerSec, 0),
      naiveAppendsPerSec: round(device.naiveAppendsPerSec, 0),
      appendsRatioToNaive: round(device.ringAppendsPerSec / device.naiveAppendsPerSec, 2),
      jsVarsPerEvent: round(device.ringJsVarsPerEvent, 3),
      naiveJsVarsPerEvent: round(device.naiveJsVarsPerEvent, 2),
      stateUpdatesPerSec: round(device.stateUpdatesPerSec, 0),
      stateRemountOk: device.stateRemountOk,
      jsVarsTotal: device.jsVarsTotal,
    };
  } else {
    console.log('bench ring: ESPRUINO_BIN is not set (or missing): the in-Espruino figures are skipped.');
  }
  printTable('Event cache appends', ['cache', 'appends/sec', 'heap bytes/event', 'JsVars/cached event'], rows);
  return figures;
}
