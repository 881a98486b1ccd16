// Shared pieces of the state store tests: templates, a seeded workload with its expected states,
// and a snapshot of everything a store holds (values, versions, acknowledged versions).
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { StateStore, stateOk } from '../../firmware/core/state-store.ts';
import {
  boolField, bytesField, fixedField, intField, stateOwnerCloud, stateOwnerDevice, stringField, type StateTemplate,
} from '../../firmware/core/state-template.ts';
import type { Flash } from '../../firmware/hal/flash.ts';
import { seededRandom } from '../../hal-mocks/flash-simulator.ts';

/** Twenty keys of every type, as a sensor node might hold. */
export const twentyKeyTemplate: StateTemplate = {
  fields: [
    intField('bootCount', stateOwnerDevice), boolField('led', stateOwnerCloud), fixedField('setpoint', stateOwnerCloud, 1),
    stringField('name', stateOwnerCloud, 16), intField('intervalSec', stateOwnerCloud), fixedField('lastTemp', stateOwnerDevice, 2),
    fixedField('lastHum', stateOwnerDevice, 1), intField('battMv', stateOwnerDevice), boolField('alarm', stateOwnerDevice),
    intField('rssi', stateOwnerDevice), stringField('fw', stateOwnerDevice, 12), bytesField('calibration', stateOwnerDevice, 8),
    intField('errors', stateOwnerDevice), boolField('heater', stateOwnerCloud), fixedField('offset', stateOwnerCloud, 2),
    intField('uptimeSec', stateOwnerDevice), stringField('zone', stateOwnerCloud, 8), intField('mode', stateOwnerCloud),
    boolField('door', stateOwnerDevice), intField('counter', stateOwnerDevice),
  ],
};

/** Six keys: with 512-byte sectors the store rotates every few dozen writes. */
export const smallTemplate: StateTemplate = {
  fields: [
    intField('a', stateOwnerDevice), boolField('b', stateOwnerCloud), stringField('c', stateOwnerDevice, 12),
    fixedField('d', stateOwnerDevice, 2), bytesField('e', stateOwnerCloud, 10), intField('f', stateOwnerCloud),
  ],
};

export function newStore(flash: Flash, template: StateTemplate, coalesceWindowMs = 0): StateStore {
  return new StateStore(flash, template, { crc32, coalesceWindowMs });
}

export type Operation =
  | { kind: 'set'; key: number; value: Uint8Array }
  | { kind: 'remove'; key: number }
  | { kind: 'cloud'; key: number; value: Uint8Array; version: number }
  | { kind: 'ack'; key: number; version: number }
  | { kind: 'rotate' };

/** Everything observable about a store, as one comparable string. */
export function snapshot(store: StateStore): string {
  const keys: string[] = [];
  const value = new Uint8Array(64);
  for (let key = 0; key < store.keyCount; key++) {
    const length = store.readBytes(key, value, 0);
    const hex = length < 0 ? '-' : Buffer.from(value.subarray(0, length)).toString('hex');
    keys.push(`${key}:${hex}:${store.isDeleted(key) ? 'D' : ''}v${store.version(key)}a${store.ackedVersion(key)}`);
  }
  return keys.join(' ');
}

function randomValue(template: StateTemplate, key: number, random: () => number): Uint8Array {
  const field = template.fields[key];
  const sized = field.type === 4 || field.type === 5;
  const length = sized ? Math.floor(random() * (field.maxLength + 1)) : field.maxLength;
  const value = new Uint8Array(length);
  for (let i = 0; i < length; i++) value[i] = field.type === 1 ? (random() < 0.5 ? 1 : 0) : Math.floor(random() * 256);
  return value;
}

/** Sets a key the way its owner may: locally for a device-owned key, as a cloud write otherwise. */
export function setAsOwner(store: StateStore, key: number, value: Uint8Array, length: number): number {
  if (store.owner(key) === stateOwnerCloud) return store.applyCloudValue(key, value, 0, length, store.version(key) + 1);
  return store.setBytes(key, value, 0, length);
}

export function applyOperation(store: StateStore, operation: Operation): number {
  switch (operation.kind) {
    case 'set':
      return store.setBytes(operation.key, operation.value, 0, operation.value.length);
    case 'remove':
      return store.remove(operation.key);
    case 'cloud':
      return store.applyCloudValue(operation.key, operation.value, 0, operation.value.length, operation.version);
    case 'ack':
      return store.ack(operation.key, operation.version);
    case 'rotate':
      return store.rotate();
  }
}

/**
 * A seeded workload of `count` operations, generated against a store that executes it on a
 * fault-free flash. Returns the operations and the snapshot after each: states[k] holds after k
 * operations (states[0]: freshly mounted).
 */
export function workload(seed: number, count: number, template: StateTemplate, makeFlash: () => Flash, rotateShare = 0.05): { operations: Operation[]; states: string[] } {
  const random = seededRandom(seed);
  const store = newStore(makeFlash(), template);
  if (store.mount() !== stateOk) throw new Error('reference store did not mount');
  const operations: Operation[] = [];
  const states = [snapshot(store)];
  for (let i = 0; i < count; i++) {
    const key = Math.floor(random() * template.fields.length);
    const choice = random();
    let operation: Operation;
    const scale = (1 - rotateShare) / 0.95;
    if (choice < 0.62 * scale) operation = { kind: 'set', key, value: randomValue(template, key, random) };
    else if (choice < 0.7 * scale) operation = { kind: 'remove', key };
    else if (choice < 0.8 * scale) operation = { kind: 'cloud', key, value: randomValue(template, key, random), version: store.version(key) + 1 + Math.floor(random() * 3) };
    else if (choice < 0.95 * scale) operation = { kind: 'ack', key, version: store.version(key) };
    else operation = { kind: 'rotate' };
    // Only the cloud changes a cloud-owned key [SYNC-32]: a local set or delete becomes a cloud write.
    if (template.fields[key].owner === stateOwnerCloud && (operation.kind === 'set' || operation.kind === 'remove')) {
      operation = { kind: 'cloud', key, value: randomValue(template, key, random), version: store.version(key) + 1 };
    }
    if (applyOperation(store, operation) !== stateOk) throw new Error(`reference operation ${i} failed`);
    operations.push(operation);
    states.push(snapshot(store));
  }
  return { operations, states };
}
