// `npm run bench -- ring`: the event ring against a naive cache that pushes one object per event
// into an array. In Node always; inside a real Espruino binary when ESPRUINO_BIN points at one
// (appends per second and JsVars per cached event from process.memory()), where it matters.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventCache, eventCacheDefaults } from '../firmware/core/event-cache.ts';
import { RealEspruino } from '../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../scripts/build/build-firmware.ts';
import { cpuProgramSource, deviceProgramSource, parseDeviceResult, type DeviceResult } from '../test/storage/device-program.ts';
import { printTable, round } from './results.ts';

export const summary = 'Event ring vs naive object array: appends/sec and memory per event (Node; real Espruino with ESPRUINO_BIN)';

interface NaiveEvent {
  t: number;
  temp: number;
  hum: number;
  batt: number;
}

/** Node: as on the device, a ring holding every event, one 10-byte event encoded once. */
function nodeFigures(events: number): { appendsPerSec: number; naiveAppendsPerSec: number; ringHeapBytesPerEvent: number; naiveHeapBytesPerEvent: number } {
  const scratch = new Uint8Array(10);
  const view = new DataView(scratch.buffer);
  view.setUint32(0, 1, true);
  view.setInt16(4, 215, true);
  view.setUint16(6, 400, true);
  view.setUint16(8, 3300, true);
  // 65,536 events of 12 bytes fit; the ring is emptied (acked) each time that many are in.
  const cache = new EventCache({ ...eventCacheDefaults(), capacityBytes: 65536 * 12 + 64 });
  const heapBefore = process.memoryUsage().heapUsed;
  let started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) {
    cache.append(scratch, 0, 10);
    if ((i & 65535) === 65535) cache.ack(cache.nextSeq);
  }
  const ringSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  const ringHeap = Math.max(0, process.memoryUsage().heapUsed - heapBefore);
  const naive: NaiveEvent[] = [];
  const naiveHeapBefore = process.memoryUsage().heapUsed;
  started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) naive.push({ t: i, temp: 21.5, hum: 40, batt: 3.3 });
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
async function espruinoFigures(binary: string, events: number, rounds: number, stateUpdates: number): Promise<DeviceResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-ring-'));
  try {
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, deviceProgramSource({ events, rounds, stateUpdates }));
    const built = await buildFirmware({ entry, outFile: join(dir, 'ring.js'), quiet: true, wrap: true });
    if (built.failures.length > 0) throw new Error(`bench ring: the device program did not build:\n${built.failures.join('\n')}`);
    const lines: string[] = [];
    const device = new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath: join(dir, 'ring.js'), onConsoleLine: (line) => lines.push(line) });
    const exited = device.start();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<number>((resolveTimeout) => (timer = setTimeout(() => resolveTimeout(-1), 120_000)));
    const code = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    await device.stop();
    const result = parseDeviceResult(lines);
    if (result === undefined) throw new Error(`bench ring: Espruino printed no result (exit ${code}):\n${lines.slice(-10).join('\n')}`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU seconds (user + system) the binary spends running `bundle`, from bash's `time`. */
function cpuSecondsOf(binary: string, bundle: string, workDir: string): Promise<number> {
  return new Promise((resolveCpu, rejectCpu) => {
    // Its own process group, so that a timeout can end bash and Espruino together.
    const child = spawn('bash', ['-c', 'TIMEFORMAT="CPU %U %S"; time "$0" "$1"', binary, bundle], { cwd: workDir, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('latin1')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('latin1')));
    // Espruino's stdin stays an open pipe that never sends anything (PROFILE.md).
    child.stdin.on('error', () => undefined);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, 180_000);
    child.on('exit', () => {
      clearTimeout(timer);
      child.stdin.destroy();
      const cpu = /CPU ([\d.]+) ([\d.]+)/.exec(stderr);
      if (cpu === null || !stdout.includes('DONE')) rejectCpu(new Error(`bench ring: no CPU time from ${bundle}: ${stdout.slice(-300)} ${stderr.slice(-300)}`));
      else resolveCpu(Number(cpu[1]) + Number(cpu[2]));
    });
  });
}

/** Appends per CPU second, ring and naive, each the best of `repeats` runs less the startup run. */
async function cpuFigures(binary: string, events: number, rounds: number, repeats: number): Promise<{ ring: number; naive: number; startupCpuSec: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-bench-cpu-'));
  try {
    const best: Record<string, number> = {};
    for (const kind of ['startup', 'ring', 'naive'] as const) {
      const entry = join(dir, `${kind}.ts`);
      writeFileSync(entry, cpuProgramSource(kind, events, rounds));
      const built = await buildFirmware({ entry, outFile: join(dir, `${kind}.js`), quiet: true, wrap: true });
      if (built.failures.length > 0) throw new Error(`bench ring: ${kind} program did not build:\n${built.failures.join('\n')}`);
      best[kind] = Infinity;
      for (let repeat = 0; repeat < repeats; repeat++) best[kind] = Math.min(best[kind], await cpuSecondsOf(binary, join(dir, `${kind}.js`), dir));
    }
    const appended = events * rounds;
    return { ring: appended / Math.max(0.001, best.ring - best.startup), naive: appended / Math.max(0.001, best.naive - best.startup), startupCpuSec: best.startup };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(options: { quick: boolean }): Promise<Record<string, unknown>> {
  const events = options.quick ? 100_000 : 1_000_000;
  const node = nodeFigures(events);
  const rows: (string | number)[][] = [
    ['Node: event ring (10-byte events)', node.appendsPerSec, node.ringHeapBytesPerEvent, '-'],
    ['Node: naive array of {t, temp, hum, batt}', node.naiveAppendsPerSec, node.naiveHeapBytesPerEvent, '-'],
  ];
  const figures: Record<string, unknown> = { events, node };

  const binary = process.env.ESPRUINO_BIN ?? '';
  if (binary !== '' && existsSync(binary)) {
    // The naive cache runs out of memory near 2,000 events on an ESP32-format build: stay below.
    const deviceEvents = options.quick ? 300 : 1000;
    const device = await espruinoFigures(binary, deviceEvents, options.quick ? 2 : 15, options.quick ? 100 : 500);
    const cpu = await cpuFigures(binary, deviceEvents, options.quick ? 5 : 30, options.quick ? 1 : 3);
    rows.push(
      [`Espruino: event ring (${deviceEvents} events)`, round(device.ringAppendsPerSec, 0), '-', round(device.ringJsVarsPerEvent, 2)],
      ['Espruino: event ring, event = first bytes of a larger scratch', round(device.ringSliceAppendsPerSec, 0), '-', '-'],
      ['Espruino: event ring, encoding each event in the loop', round(device.ringAppendsWithEncodePerSec, 0), '-', '-'],
      ['Espruino: full 4 KiB ring (drop-oldest on every append)', round(device.ringFullAppendsPerSec, 0), '-', '-'],
      ['Espruino: event ring, per CPU second (load-independent)', round(cpu.ring, 0), '-', '-'],
      ['Espruino: naive array, per CPU second (load-independent)', round(cpu.naive, 0), '-', '-'],
      [`Espruino: naive array (${deviceEvents} events)`, round(device.naiveAppendsPerSec, 0), '-', round(device.naiveJsVarsPerEvent, 2)],
      ['Espruino: state store updates on Storage', round(device.stateUpdatesPerSec, 0), '-', '-'],
      [`Espruino: state store mount (replay) in ms`, round(device.stateMountMs, 1), '-', '-'],
    );
    figures.espruino = {
      binary: 'ESPRUINO_BIN',
      events: deviceEvents,
      appendsPerSec: round(device.ringAppendsPerSec, 0),
      naiveAppendsPerSec: round(device.naiveAppendsPerSec, 0),
      appendsRatioToNaive: round(device.ringAppendsPerSec / device.naiveAppendsPerSec, 2),
      appendsPerCpuSec: round(cpu.ring, 0),
      naiveAppendsPerCpuSec: round(cpu.naive, 0),
      appendsRatioToNaiveCpu: round(cpu.ring / cpu.naive, 2),
      appendsWithEncodePerSec: round(device.ringAppendsWithEncodePerSec, 0),
      sliceAppendsPerSec: round(device.ringSliceAppendsPerSec, 0),
      fullRingAppendsPerSec: round(device.ringFullAppendsPerSec, 0),
      jsVarsPerEvent: round(device.ringJsVarsPerEvent, 3),
      naiveJsVarsPerEvent: round(device.naiveJsVarsPerEvent, 2),
      stateUpdatesPerSec: round(device.stateUpdatesPerSec, 0),
      stateRemountOk: device.stateRemountOk,
      stateMountMs: round(device.stateMountMs, 1),
      jsVarsTotal: device.jsVarsTotal,
    };
  } else {
    console.log('bench ring: ESPRUINO_BIN is not set (or missing): the in-Espruino figures are skipped.');
  }
  printTable('Event cache appends', ['cache', 'appends/sec', 'heap bytes/event', 'JsVars/cached event'], rows);
  return figures;
}
