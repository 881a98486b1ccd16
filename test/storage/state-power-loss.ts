// Power loss as an ordinary input (littlefs reentrant tests, Zephyr NVS): a seeded workload of
// mixed operations rerun with the power cut at every flash operation, then with every operation
// torn. After each remount the store holds the state before or after the operation in flight,
// never anything else, and takes writes again [STORE-1] [STORE-2] [STORE-3].
import { describe, expect, it } from 'vitest';
import { stateOk } from '../../firmware/core/state-store.ts';
import type { StateTemplate } from '../../firmware/core/state-template.ts';
import { FlashSimulator, PowerLoss, type TearMode } from '../../hal-mocks/flash-simulator.ts';
import { applyOperation, newStore, setAsOwner, smallTemplate, snapshot, twentyKeyTemplate, workload, type Operation } from './state-helpers.ts';

export interface Setup {
  name: string;
  template: StateTemplate;
  sectorSize: number;
  sectorCount: number;
  operations: number;
  seed: number;
}

/** 6 keys, 512-byte sectors: the store rotates every few dozen writes. */
export const manyRotations: Setup = { name: '6 keys, 512-byte sectors (many rotations)', template: smallTemplate, sectorSize: 512, sectorCount: 3, operations: 220, seed: 7 };
/** 20 keys, 4096-byte sectors: the board's geometry. */
export const boardGeometry: Setup = { name: '20 keys, 4096-byte sectors', template: twentyKeyTemplate, sectorSize: 4096, sectorCount: 4, operations: 200, seed: 11 };

type Fault = { kind: 'cut' } | { kind: 'tear'; mode: TearMode };

/** Runs the workload with one fault at flash operation `at`; returns the index of the operation in flight (-1: mount). */
function runWithFault(flash: FlashSimulator, setup: Setup, operations: Operation[], at: number, fault: Fault): number {
  if (fault.kind === 'cut') flash.cutPowerAfter(at);
  else flash.tearOperation(at, fault.mode);
  let inFlight = -1;
  try {
    const store = newStore(flash, setup.template);
    expect(store.mount()).toBe(stateOk);
    for (inFlight = 0; inFlight < operations.length; inFlight++) {
      expect(applyOperation(store, operations[inFlight])).toBe(stateOk);
    }
    return operations.length;
  } catch (error) {
    if (!(error instanceof PowerLoss)) throw error;
    return inFlight;
  }
}

function checkRemount(flash: FlashSimulator, setup: Setup, states: string[], inFlight: number, label: string): void {
  flash.restorePower();
  const store = newStore(flash, setup.template);
  expect(store.mount(), label).toBe(stateOk);
  const found = snapshot(store);
  const allowed = inFlight < 0 ? [states[0]] : [states[inFlight], states[inFlight + 1]];
  if (!allowed.includes(found)) {
    expect.fail(`${label}: after remount the store holds neither the state before nor after operation ${inFlight}\nfound:  ${found}\nbefore: ${allowed[0]}\nafter:  ${allowed[1] ?? '-'}`);
  }
  // The store takes writes again, and they survive another reboot.
  const value = new Uint8Array([0x5a, 0xa5, 0x11, 0x22]);
  for (let key = 0; key < setup.template.fields.length; key++) {
    const field = setup.template.fields[key];
    const length = field.type === 1 ? 1 : Math.min(4, field.maxLength);
    expect(setAsOwner(store, key, value, length), `${label}: write after remount`).toBe(stateOk);
  }
  const expected = snapshot(store);
  const again = newStore(flash, setup.template);
  expect(again.mount()).toBe(stateOk);
  expect(snapshot(again), `${label}: writes after remount persist`).toBe(expected);
}

/** The exhaustive suite for one setup (one per test file, so that the two run in parallel). */
export function powerLossSuite(setup: Setup): void {
  describe(`state store power loss: ${setup.name}`, () => {
    const makeFlash = () => new FlashSimulator({ sectorSize: setup.sectorSize, sectorCount: setup.sectorCount, seed: setup.seed });
    const { operations, states } = workload(setup.seed, setup.operations, setup.template, makeFlash);

    // The fault-free run: how many flash operations the workload makes.
    const clean = makeFlash();
    expect(runWithFault(clean, setup, operations, Number.MAX_SAFE_INTEGER, { kind: 'cut' })).toBe(operations.length);
    const flashOperations = clean.operations;

    it(`the workload has at least 200 operations, with rotations (${flashOperations} flash operations)`, () => {
      expect(operations.length).toBeGreaterThanOrEqual(200);
      expect(operations.some((operation) => operation.kind === 'rotate')).toBe(true);
      expect(new Set(operations.map((operation) => operation.kind)).size).toBe(5);
    });

    it('power cut after every flash operation: old or new state, then writable', () => {
      for (let at = 0; at <= flashOperations; at++) {
        const flash = makeFlash();
        const inFlight = runWithFault(flash, setup, operations, at, { kind: 'cut' });
        checkRemount(flash, setup, states, Math.min(inFlight, operations.length - 1), `cut at ${at}`);
      }
    });

    it.each(['untouched', 'random'] as const)('every flash operation torn (rest %s): old or new state, then writable', (mode) => {
      for (let at = 0; at < flashOperations; at++) {
        const flash = new FlashSimulator({ sectorSize: setup.sectorSize, sectorCount: setup.sectorCount, seed: setup.seed * 1000 + at });
        const inFlight = runWithFault(flash, setup, operations, at, { kind: 'tear', mode });
        expect(inFlight, `tear at ${at} must interrupt the run`).toBeLessThan(operations.length);
        checkRemount(flash, setup, states, inFlight, `tear (${mode}) at ${at}`);
      }
    });
  });
}
