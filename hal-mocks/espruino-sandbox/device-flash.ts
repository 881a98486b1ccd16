// Provisioning an emulated device: puts its configuration file into its flash image, where the
// firmware reads it at boot exactly as on a board (firmware/hal/espruino/config.ts).
import { deviceConfigError, deviceConfigFileName, type DeviceConfig } from '../../firmware/protocol/device-config.ts';
import { EspruinoStorage } from './storage.ts';

/**
 * Writes `config` as the device configuration into the flash image at `imagePath` (created when
 * missing). An identical file is left alone, so repeated runs do not wear the flash.
 */
export function writeDeviceConfigToFlash(imagePath: string, config: DeviceConfig, geometry: { pageBytes: number; pageCount: number } = { pageBytes: 4096, pageCount: 224 }): void {
  const error = deviceConfigError(config);
  if (error !== null) throw new Error(`device config: ${error}`);
  const storage = new EspruinoStorage({ ...geometry, imagePath });
  try {
    storage.writeJSON(deviceConfigFileName, config);
  } finally {
    storage.close();
  }
}
