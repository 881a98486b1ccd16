// The ring and the state store as the device runs them: bundled through the firmware build and
// its Espruino gate, then run in the sandbox (Espruino globals, emulated Storage, a power cycle).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EspruinoSandbox, VirtualScheduler } from '../../hal-mocks/espruino-sandbox/index.ts';
import { buildFirmware } from '../../scripts/build/build-firmware.ts';
import { deviceProgramSource, parseDeviceResult } from './device-program.ts';

describe('storage code on Espruino (gate + sandbox)', () => {
  it('passes the Espruino gate and runs: the ring holds events in its buffer, the store survives a remount', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-storage-espruino-'));
    const entry = join(dir, 'entry.ts');
    writeFileSync(entry, deviceProgramSource({ events: 600, rounds: 1, stateUpdates: 300 }));
    const built = await buildFirmware({ entry, outFile: join(dir, 'storage.js'), quiet: true, wrap: true });
    expect(built.failures).toEqual([]);

    const lines: string[] = [];
    const scheduler = new VirtualScheduler();
    const sandbox = new EspruinoSandbox({ bundlePath: join(dir, 'storage.js'), platform: 'linux', scheduler, onConsoleLine: (line) => lines.push(line) });
    sandbox.boot();
    const storage = sandbox.storage;
    let fileNames: string[] = [];
    scheduler.advance(1);
    fileNames = storage.list();
    scheduler.advance(10);
    expect(sandbox.uncaughtErrors).toEqual([]);
    const result = parseDeviceResult(lines);
    expect(result, lines.join('\n')).toBeDefined();
    // The ring holds all 600 events; one 2 KiB batch reads 170 of 12 bytes back.
    expect(result!.ringEventsHeld).toBe(600);
    expect(result!.ringReadBack).toBe(170);
    expect(result!.stateRemountOk, lines.join('\n')).toBe(true);
    // Storage now holds the store's sector files.
    expect(fileNames.filter((name) => name.startsWith('tdm.bench.')).length).toBeGreaterThanOrEqual(1);
  });
});
