// The firmware bundle's entry: wires the Espruino HAL and, for now, proves the platform works:
// boot banner, configuration from Storage, a boot counter in Storage, a repeating timer and a TCP
// connection to the configured broker address. Later issues replace the body with the sync engine.
import { EspruinoClock } from './hal/espruino/clock.ts';
import { readDeviceConfig } from './hal/espruino/config.ts';
import { EspruinoLog } from './hal/espruino/log.ts';
import { EspruinoNetwork } from './hal/espruino/network.ts';
import { startNetwork } from './hal/espruino/wifi.ts';
import type { DeviceConfig } from './protocol/device-config.ts';

const firmwareVersion = '0.1.0';
/** Storage file holding the number of boots as decimal text. */
const bootCountFileName = 'tandem.boots';
const heartbeatPeriodMs = 10000;
const reconnectDelayMs = 5000;

const log = new EspruinoLog();
const clock = new EspruinoClock();
const storage = require('Storage');

function countBoot(): number {
  const previous = storage.read(bootCountFileName);
  const count = (previous === undefined ? 0 : parseInt(previous, 10) || 0) + 1;
  // Writing at offset 0 makes a new copy of the file; the old one is trash until compaction.
  storage.write(bootCountFileName, String(count));
  return count;
}

function heartbeat(): void {
  const memory = process.memory();
  log.info('uptime ' + Math.floor(clock.nowMs() / 1000) + ' s, ' + memory.free + ' of ' + memory.total + ' JsVars free');
}

function connectBroker(config: DeviceConfig, network: EspruinoNetwork): void {
  const where = config.mqttHost + ':' + config.mqttPort;
  log.info('tcp: connecting to ' + where + (config.tls ? ' (tls)' : ''));
  network.connect(config.mqttHost, config.mqttPort, config.tls, {
    onConnect: function () {
      log.info('tcp: connected to ' + where);
    },
    onData: function (bytes: string) {
      log.info('tcp: received ' + bytes.length + ' bytes');
    },
    onClose: function (hadError: boolean) {
      log.info('tcp: ' + (hadError ? 'could not connect or failed' : 'closed') + ', retrying in ' + reconnectDelayMs / 1000 + ' s');
      setTimeout(function () {
        connectBroker(config, network);
      }, reconnectDelayMs);
    },
  });
}

log.info('Tandem firmware ' + firmwareVersion + ' on Espruino ' + process.version);
const configResult = readDeviceConfig(storage);
const config = configResult.config;
if (config === null) {
  log.error('config: ' + configResult.error);
} else {
  log.info('device ' + config.deviceId + ', boot #' + countBoot());
  setInterval(heartbeat, heartbeatPeriodMs);
  const network = new EspruinoNetwork(config.caCert);
  startNetwork(config, log, function (error: string | null) {
    if (error !== null) {
      log.error('network: ' + error);
      return;
    }
    connectBroker(config, network);
  });
}
