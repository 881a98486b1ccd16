// The simulation's slower mode in CI: the cloud stub as a child process, killed with SIGKILL
// mid-sync and started again on the same data directory, while two device cores keep syncing.
// Acknowledged events survive, none is delivered twice, and the fleet converges afterwards.
import { describe, expect, it } from 'vitest';
import { runSimulation } from './fleet-sim.ts';
import { knownIssues, livenessCodes } from './known-issues.ts';

describe('fleet simulation with kill -9 of the cloud process', () => {
  it('seed 1: a killed cloud loses no acknowledged event and delivers none twice', async () => {
    const result = await runSimulation(1, { cloudProcess: true, devices: 2, kinds: ['cloud-kill'], faultsMin: 1, faultsMax: 2, activityMs: 800, convergeMs: 6000 });
    expect(result.faults['cloud-kill'] ?? 0).toBeGreaterThan(0);
    const safety = result.violations.filter((v) => !(v.code in knownIssues) && !livenessCodes.has(v.code));
    expect(safety.map((v) => `[${v.code}] ${v.message}`)).toEqual([]);
    expect(result.lost).toBe(0);
    expect(result.duplicated).toBe(0);
    expect(result.corrupted).toBe(0);
    expect(result.delivered).toBeGreaterThan(50);
  }, 60_000);
});
