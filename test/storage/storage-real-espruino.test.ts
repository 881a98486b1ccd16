// The ring and the state store in a real Espruino Linux binary (ESPRUINO_BIN; skipped without
// it): no JsVars per cached event beyond the preallocated buffer, against about 8 for a naive
// cache of objects, and a state store that remounts from Espruino's own Storage.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RealEspruino } from '../../hal-mocks/espruino-sandbox/real-espruino.ts';
import { buildFirmware } from '../../scripts/build/build-firmware.ts';
import { deviceProgramSource, parseDeviceResult } from './device-program.ts';

const binary = process.env.ESPRUINO_BIN ?? '';

describe.skipIf(binary === '' || !existsSync(binary))('storage code in a real Espruino binary', () => {
  it('caches events in its buffer only (no JsVars per event) and remounts the state store from Storage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-storage-real-'));
    try {
      const entry = join(dir, 'entry.ts');
      writeFileSync(entry, deviceProgramSource({ events: 500, rounds: 1, stateUpdates: 200 }));
      const built = await buildFirmware({ entry, outFile: join(dir, 'storage.js'), quiet: true, wrap: true });
      expect(built.failures).toEqual([]);
      const lines: string[] = [];
      const device = new RealEspruino({ binaryPath: binary, workDir: dir, bundlePath: join(dir, 'storage.js'), onConsoleLine: (line) => lines.push(line) });
      const exited = device.start();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolveTimeout) => (timer = setTimeout(resolveTimeout, 30_000)))]);
      clearTimeout(timer);
      await device.stop();
      const result = parseDeviceResult(lines);
      expect(result, lines.slice(-10).join('\n')).toBeDefined();
      expect(result!.ringEventsHeld).toBe(500);
      expect(result!.ringJsVarsPerEvent).toBeLessThan(0.05);
      expect(result!.naiveJsVarsPerEvent).toBeGreaterThan(6);
      expect(result!.stateRemountOk).toBe(true);
      expect(lines.some((line) => line.startsWith('REMOUNT'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
