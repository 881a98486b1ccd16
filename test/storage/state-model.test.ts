// Model-based test (fast-check): random command sequences run against the state store and an
// in-memory reference; after every command, and across remounts and rotations, the two agree.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StateStore, stateErrorStale, stateOk } from '../../firmware/core/state-store.ts';
import { stateOwnerDevice } from '../../firmware/core/state-template.ts';
import { FlashSimulator, PowerLoss } from '../../hal-mocks/flash-simulator.ts';
import { applyOperation, newStore, smallTemplate, snapshot, workload } from './state-helpers.ts';

interface ModelKey {
  value: number[] | null;
  deleted: boolean;
  version: number;
  acked: number;
}

interface Model {
  keys: ModelKey[];
}

interface Real {
  flash: FlashSimulator;
  store: StateStore;
}

function valueLengthFor(key: number, requested: number): number {
  const field = smallTemplate.fields[key];
  return field.type === 4 || field.type === 5 ? Math.min(requested, field.maxLength) : field.maxLength;
}

function check(model: Model, real: Real): void {
  const into = new Uint8Array(64);
  for (let key = 0; key < model.keys.length; key++) {
    const expected = model.keys[key];
    const length = real.store.readBytes(key, into, 0);
    expect(length === -1 ? null : Array.from(into.subarray(0, length)), `value of key ${key}`).toEqual(expected.deleted ? null : expected.value);
    expect(real.store.isDeleted(key)).toBe(expected.deleted);
    expect(real.store.version(key)).toBe(expected.version);
    expect(real.store.ackedVersion(key)).toBe(expected.acked);
    expect(real.store.isChanged(key)).toBe(expected.version > expected.acked);
  }
}

class SetCommand implements fc.Command<Model, Real> {
  constructor(readonly key: number, readonly bytes: number[]) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const value = this.bytes.slice(0, valueLengthFor(this.key, this.bytes.length));
    while (value.length < valueLengthFor(this.key, this.bytes.length)) value.push(0);
    if (smallTemplate.fields[this.key].type === 1) value[0] &= 1;
    expect(real.store.setBytes(this.key, Uint8Array.from(value), 0, value.length)).toBe(stateOk);
    const entry = model.keys[this.key];
    entry.value = value;
    entry.deleted = false;
    entry.version++;
    check(model, real);
  }
  toString = () => `set(${this.key}, [${this.bytes.join(',')}])`;
}

class RemoveCommand implements fc.Command<Model, Real> {
  constructor(readonly key: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    expect(real.store.remove(this.key)).toBe(stateOk);
    const entry = model.keys[this.key];
    if (entry.value !== null && !entry.deleted) {
      entry.deleted = true;
      entry.version++;
    }
    check(model, real);
  }
  toString = () => `remove(${this.key})`;
}

class CloudCommand implements fc.Command<Model, Real> {
  constructor(readonly key: number, readonly versionDelta: number, readonly bytes: number[]) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const entry = model.keys[this.key];
    const version = entry.version + this.versionDelta;
    const length = valueLengthFor(this.key, this.bytes.length);
    const value = Array.from({ length }, (_, i) => (this.bytes[i] ?? 0) & (smallTemplate.fields[this.key].type === 1 ? 1 : 0xff));
    const result = real.store.applyCloudValue(this.key, Uint8Array.from(value), 0, length, version);
    if (this.versionDelta <= 0) {
      // A stale write never overwrites a newer value.
      expect(result).toBe(stateErrorStale);
    } else {
      expect(result).toBe(stateOk);
      entry.value = value;
      entry.deleted = false;
      entry.version = version;
      entry.acked = version;
    }
    check(model, real);
  }
  toString = () => `cloud(${this.key}, +${this.versionDelta}, [${this.bytes.join(',')}])`;
}

class AckCommand implements fc.Command<Model, Real> {
  constructor(readonly key: number, readonly behind: number) {}
  check = () => true;
  run(model: Model, real: Real): void {
    const entry = model.keys[this.key];
    const version = Math.max(0, entry.version - this.behind);
    expect(real.store.ack(this.key, version)).toBe(stateOk);
    if (version > entry.acked) entry.acked = version;
    check(model, real);
  }
  toString = () => `ack(${this.key}, -${this.behind})`;
}

class RotateCommand implements fc.Command<Model, Real> {
  check = () => true;
  run(model: Model, real: Real): void {
    expect(real.store.rotate()).toBe(stateOk);
    check(model, real);
  }
  toString = () => 'rotate';
}

class RemountCommand implements fc.Command<Model, Real> {
  check = () => true;
  run(model: Model, real: Real): void {
    real.store = newStore(real.flash, smallTemplate);
    expect(real.store.mount()).toBe(stateOk);
    check(model, real);
  }
  toString = () => 'remount';
}

const key = fc.integer({ min: 0, max: smallTemplate.fields.length - 1 });
// Only the cloud changes a cloud-owned key [SYNC-32]: local sets and deletes take device-owned ones.
const deviceKey = fc.constantFrom(...smallTemplate.fields.flatMap((field, id) => (field.owner === stateOwnerDevice ? [id] : [])));
const bytes = fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 12 });
const commands = [
  fc.tuple(deviceKey, bytes).map(([k, b]) => new SetCommand(k, b)),
  fc.tuple(deviceKey, bytes).map(([k, b]) => new SetCommand(k, b)),
  deviceKey.map((k) => new RemoveCommand(k)),
  fc.tuple(key, fc.integer({ min: -1, max: 3 }), bytes).map(([k, d, b]) => new CloudCommand(k, d, b)),
  fc.tuple(key, fc.integer({ min: 0, max: 2 })).map(([k, behind]) => new AckCommand(k, behind)),
  fc.constant(new RotateCommand()),
  fc.constant(new RemountCommand()),
];

describe('state store against an in-memory model (fast-check)', () => {
  it('agrees after every command, across rotations and remounts', () => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 120 }), fc.integer({ min: 2, max: 4 }), (sequence, sectorCount) => {
        const flash = new FlashSimulator({ sectorCount, sectorSize: 512 });
        const store = newStore(flash, smallTemplate);
        expect(store.mount()).toBe(stateOk);
        const model: Model = { keys: smallTemplate.fields.map(() => ({ value: null, deleted: false, version: 0, acked: 0 })) };
        fc.modelRun(() => ({ model, real: { flash, store } }), sequence);
      }),
      { numRuns: 200, seed: 4242 },
    );
  });
});

describe('state store under random power cuts (fast-check)', () => {
  it('random workloads, a cut or tear anywhere: the remounted state is the one before or after the operation in flight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 10, max: 80 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom<'cut' | 'untouched' | 'random'>('cut', 'untouched', 'random'),
        (seed, count, where, fault) => {
          const makeFlash = () => new FlashSimulator({ sectorCount: 2, sectorSize: 512, seed });
          const { operations, states } = workload(seed, count, smallTemplate, makeFlash, 0.1);
          const clean = makeFlash();
          const cleanStore = newStore(clean, smallTemplate);
          cleanStore.mount();
          for (const operation of operations) applyOperation(cleanStore, operation);
          const at = Math.floor(where * clean.operations);
          const flash = makeFlash();
          if (fault === 'cut') flash.cutPowerAfter(at);
          else flash.tearOperation(at, fault);
          let inFlight = -1;
          try {
            const store = newStore(flash, smallTemplate);
            store.mount();
            for (inFlight = 0; inFlight < operations.length; inFlight++) applyOperation(store, operations[inFlight]);
          } catch (error) {
            if (!(error instanceof PowerLoss)) throw error;
          }
          flash.restorePower();
          const store = newStore(flash, smallTemplate);
          expect(store.mount()).toBe(stateOk);
          const found = snapshot(store);
          if (inFlight >= operations.length) {
            expect(found).toBe(states[operations.length]);
          } else {
            expect(inFlight < 0 ? [states[0]] : [states[inFlight], states[inFlight + 1]]).toContain(found);
          }
        },
      ),
      { numRuns: 300, seed: 777 },
    );
  });
});
