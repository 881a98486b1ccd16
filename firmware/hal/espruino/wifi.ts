// Brings the network up. Boards with a `Wifi` module join the configured access point; where no
// such module exists (Linux builds of Espruino, the sandbox) the host's network is already there.
import type { DeviceConfig } from '../../protocol/device-config.ts';
import type { Log } from '../log.ts';

/** Called once: null when the network is usable, else one line saying why not. */
export type NetworkReadyCallback = (error: string | null) => void;

function wifiModule(): EspruinoWifi | null {
  try {
    return require('Wifi');
  } catch (error) {
    // Linux builds have no Wifi module: require throws "Module Wifi not found".
    return null;
  }
}

export function startNetwork(config: DeviceConfig, log: Log, ready: NetworkReadyCallback): void {
  const wifi = wifiModule();
  if (wifi === null || wifi === undefined) {
    log.info('network: no Wifi module, using the host network');
    ready(null);
    return;
  }
  if (config.wifiSsid === undefined) {
    log.info('network: no wifiSsid configured, using the network as it is');
    ready(null);
    return;
  }
  const ssid = config.wifiSsid;
  log.info('network: joining WiFi ' + ssid);
  wifi.connect(ssid, { password: config.wifiPassword }, function (error: string | null) {
    if (error) {
      ready('WiFi ' + ssid + ': ' + error);
      return;
    }
    log.info('network: WiFi up, ip ' + wifi.getIP().ip);
    ready(null);
  });
}
