// Reads the device configuration from its Storage file, so one bundle runs on any board or
// emulator: the file, not the code, says who the device is and where its cloud lives.
import { deviceConfigError, deviceConfigFileName, type DeviceConfig } from '../../protocol/device-config.ts';

/** The outcome of reading the configuration: exactly one of the two fields is set. */
export interface DeviceConfigResult {
  config: DeviceConfig | null;
  /** One line for the console when the configuration is missing or wrong. */
  error: string | null;
}

export function readDeviceConfig(storage: EspruinoStorage): DeviceConfigResult {
  if (storage.read(deviceConfigFileName) === undefined) {
    return { config: null, error: 'no ' + deviceConfigFileName + ' in Storage: provision the device first' };
  }
  // noExceptions: a damaged file is an operating error, reported as undefined, not thrown.
  const value = storage.readJSON(deviceConfigFileName, true);
  if (value === undefined) return { config: null, error: deviceConfigFileName + ' is not valid JSON' };
  const error = deviceConfigError(value);
  if (error !== null) return { config: null, error: deviceConfigFileName + ': ' + error };
  return { config: value as DeviceConfig, error: null };
}
