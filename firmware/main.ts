// The firmware bundle's entry: reads the device configuration from Storage, wires Espruino's
// hardware (Storage-backed flash, sockets, timers, sensors, LED, button) to the example
// application, brings the network up and starts syncing. The same bundle runs on a board, in the
// sandbox and in a Linux build of Espruino: the config file, not the code, says who the device is.
import { Application, firmwareVersion } from './app.ts';
import { EspruinoClock, EspruinoTimers } from './hal/espruino/clock.ts';
import { readDeviceConfig } from './hal/espruino/config.ts';
import { EspruinoLog } from './hal/espruino/log.ts';
import { EspruinoNetwork } from './hal/espruino/network.ts';
import { EspruinoButton, EspruinoIndicator, EspruinoSensors } from './hal/espruino/sensors.ts';
import { StorageFlash, storageSectorSizeFor } from './hal/espruino/storage-flash.ts';
import { startNetwork } from './hal/espruino/wifi.ts';
import { eventFlashBytesOf, eventFlashSectorBytes } from './protocol/device-config.ts';
import { stateStoreSectorCountDefault } from './protocol/limits.ts';

/** Storage page size of the ESP32 build; each state store sector is one preallocated file. */
const storagePageBytes = 4096;
/** Prefix of the state store's Storage files (tdm.st0, tdm.st1, ...). */
const stateFilePrefix = 'tdm.st';
/** Prefix of the durable event cache's Storage files (tdm.ev0, tdm.ev1, ...). */
const eventFilePrefix = 'tdm.ev';

const log = new EspruinoLog();
const storage = require('Storage');
log.info('Tandem firmware ' + firmwareVersion + ' on Espruino ' + process.version);
const configResult = readDeviceConfig(storage);
const config = configResult.config;
if (config === null) {
  log.error('config: ' + configResult.error);
} else {
  // E.CRC32 is native (fast): the codec and the state store take it through the HAL.
  const nativeCrc = function (bytes: Uint8Array, offset: number, length: number): number {
    return E.CRC32(new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length));
  };
  const eventFlashBytes = eventFlashBytesOf(config);
  const app = new Application(
    {
      network: new EspruinoNetwork(config.caCert),
      flash: new StorageFlash(storage, stateFilePrefix, storageSectorSizeFor(storagePageBytes), stateStoreSectorCountDefault),
      clock: new EspruinoClock(),
      timers: new EspruinoTimers(),
      random: {
        nextUint32: function () {
          return Math.floor(Math.random() * 4294967296);
        },
      },
      log: log,
      crc32: nativeCrc,
      crc32OfText: function (text: string): number {
        return E.CRC32(text);
      },
      sensors: new EspruinoSensors(),
      indicator: new EspruinoIndicator(),
      button: new EspruinoButton(),
      eventFlash: eventFlashBytes > 0 ? new StorageFlash(storage, eventFilePrefix, storageSectorSizeFor(storagePageBytes), eventFlashBytes / eventFlashSectorBytes) : null,
    },
    config,
  );
  // A planned reset (reset(), load(), a new upload): what waits in RAM goes to flash first.
  E.on('kill', function () {
    app.device.persist();
  });
  log.info('device ' + config.deviceId + ', boot epoch ' + app.device.epoch);
  startNetwork(config, log, function (error: string | null) {
    if (error !== null) log.error('network: ' + error);
    else app.start();
  });
}
