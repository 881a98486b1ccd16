// Provisioning: register a device with a fresh secret (stored hashed) and write the device config
// file (firmware/protocol/device-config.ts) that flashing and the emulators put on the device.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { deviceConfigError, type DeviceConfig } from '../firmware/protocol/device-config.ts';
import { isValidDeviceId } from '../firmware/protocol/topics.ts';
import { generateSecret, hashSecret, secretHashCostDefault } from './identity.ts';
import type { Repository } from './storage/repository.ts';

export type ProvisionOutcome =
  | { outcome: 'created'; secret: string }
  | { outcome: 'rotated'; secret: string }
  | { outcome: 'exists' }
  | { outcome: 'invalid-id'; message: string };

/**
 * Registers `deviceId` with a new secret and returns the secret (the only time it exists in
 * clear outside the device). An existing device keeps its secret unless `rotate` is set.
 */
export async function provisionDevice(
  repository: Repository,
  deviceId: string,
  options: { rotate?: boolean; hashCost?: number; nowMs?: number } = {},
): Promise<ProvisionOutcome> {
  if (!isValidDeviceId(deviceId)) return { outcome: 'invalid-id', message: `device id '${deviceId}' must be 1 to 32 characters of A-Z a-z 0-9 _ -` };
  const secret = generateSecret();
  const hash = await hashSecret(secret, options.hashCost ?? secretHashCostDefault);
  if (await repository.createDevice(deviceId, hash, options.nowMs ?? Date.now())) return { outcome: 'created', secret };
  if (!options.rotate) return { outcome: 'exists' };
  await repository.replaceDeviceSecret(deviceId, hash);
  return { outcome: 'rotated', secret };
}

/** Builds and checks a device config; a broken one is a bug here, so it throws. */
export function buildDeviceConfig(fields: DeviceConfig): DeviceConfig {
  const config: DeviceConfig = {
    deviceId: fields.deviceId,
    secret: fields.secret,
    mqttHost: fields.mqttHost,
    mqttPort: fields.mqttPort,
    tls: fields.tls,
  };
  if (fields.caCert !== undefined) config.caCert = fields.caCert;
  if (fields.wifiSsid !== undefined) config.wifiSsid = fields.wifiSsid;
  if (fields.wifiPassword !== undefined) config.wifiPassword = fields.wifiPassword;
  if (fields.eventFlashBytes !== undefined) config.eventFlashBytes = fields.eventFlashBytes;
  if (fields.eventFlashFlushMs !== undefined) config.eventFlashFlushMs = fields.eventFlashFlushMs;
  const error = deviceConfigError(config);
  if (error !== null) throw new Error(`built an invalid device config: ${error}`);
  return config;
}

/** Writes the config as JSON, readable by the owner only (it holds the secret). */
export function writeDeviceConfig(path: string, config: DeviceConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}

export function deviceConfigExists(path: string): boolean {
  return existsSync(path);
}
