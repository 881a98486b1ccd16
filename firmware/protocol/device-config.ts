// The device configuration file: what a device needs to meet its cloud. `tandem provision` writes
// it, `tandem flash` stores it on the board and the emulators store it in their flash image, all as
// the Storage file named below, so one bundle runs anywhere. Firmware-grade: runs on Espruino too.
import { spillAreaBytesDefault, spillSectorCountMax } from './limits.ts';
import { isValidDeviceId } from './topics.ts';

/** The Storage file (JSON) holding the device configuration. */
export const deviceConfigFileName = 'tandem.cfg';

export interface DeviceConfig {
  /** 1 to 32 characters of [A-Za-z0-9_-]; also the MQTT client id and username. */
  deviceId: string;
  /** The device's MQTT password, as issued by `tandem provision`. */
  secret: string;
  /** Broker host name or address, and port (1883 plain, 8883 TLS by convention). */
  mqttHost: string;
  mqttPort: number;
  /**
   * Use TLS (mqtts). `caCert` (PEM) is the cloud's CA, handed to the TLS stack. Espruino 2v29
   * encrypts but never verifies the server, CA or not (its mbedtls runs with VERIFY_NONE, found by
   * test against the real interpreter): the device's secret still authenticates the device, but a
   * man in the middle could pose as the broker.
   */
  tls: boolean;
  caCert?: string;
  /**
   * The durable event cache (issue 9): bytes of flash that cached events spill into, so they
   * survive reboots and power loss. 0 turns it off (events live in RAM only); absent means
   * spillAreaBytesDefault (128 KiB). A whole number of 4 KiB sectors, 2 to spillSectorCountMax.
   */
  eventFlashBytes?: number;
  /**
   * How long a spilled event may wait in RAM before it is programmed (ms, 0 to 600000; absent:
   * spillFlushDelayMs, 1 s). A power cut loses at most that much; 0 (write-through) loses at most
   * the event being written but programs more flash per event (see bench/results.json outbox).
   */
  eventFlashFlushMs?: number;
  /** WiFi credentials; absent where the platform has no WiFi (emulators, Linux builds). */
  wifiSsid?: string;
  wifiPassword?: string;
}

/** The durable event cache's area is counted in sectors of this many bytes (one Storage page). */
export const eventFlashSectorBytes = 4096;

/** eventFlashBytes: 0 (off) or whole sectors, 2 to spillSectorCountMax of them. */
export function isValidEventFlashBytes(bytes: unknown): boolean {
  return bytes === 0 || (typeof bytes === 'number' && bytes % eventFlashSectorBytes === 0 && bytes >= 2 * eventFlashSectorBytes && bytes <= spillSectorCountMax * eventFlashSectorBytes);
}

/** eventFlashFlushMs: a whole number of ms, 0 to 600000. */
export function isValidEventFlashFlushMs(ms: unknown): boolean {
  return typeof ms === 'number' && ms === Math.floor(ms) && ms >= 0 && ms <= 600000;
}

/** Bytes of flash for the durable event cache: 0 when it is off. */
export function eventFlashBytesOf(config: DeviceConfig): number {
  return config.eventFlashBytes === undefined ? spillAreaBytesDefault : config.eventFlashBytes;
}

/**
 * Checks a parsed configuration. Returns null when it is valid, else one line naming the first bad
 * field, so a wrong file gives a clear error on the device console and in the CLI.
 */
export function deviceConfigError(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'device config must be a JSON object';
  const config = value as Record<string, unknown>;
  if (typeof config.deviceId !== 'string' || !isValidDeviceId(config.deviceId)) {
    return 'deviceId must be 1 to 32 characters of A-Z a-z 0-9 _ -';
  }
  if (typeof config.secret !== 'string' || config.secret.length === 0) return 'secret must be a non-empty string';
  if (typeof config.mqttHost !== 'string' || config.mqttHost.length === 0) return 'mqttHost must be a non-empty string';
  const port = config.mqttPort;
  if (typeof port !== 'number' || port !== Math.floor(port) || port < 1 || port > 65535) {
    return 'mqttPort must be a whole number from 1 to 65535';
  }
  if (typeof config.tls !== 'boolean') return 'tls must be true or false';
  if (config.caCert !== undefined && typeof config.caCert !== 'string') return 'caCert must be a PEM string';
  if (config.eventFlashBytes !== undefined && !isValidEventFlashBytes(config.eventFlashBytes)) {
    return 'eventFlashBytes must be 0 (off) or a multiple of ' + eventFlashSectorBytes + ' from ' + 2 * eventFlashSectorBytes + ' to ' + spillSectorCountMax * eventFlashSectorBytes;
  }
  if (config.eventFlashFlushMs !== undefined && !isValidEventFlashFlushMs(config.eventFlashFlushMs)) {
    return 'eventFlashFlushMs must be a whole number of ms from 0 to 600000';
  }
  if (config.wifiSsid !== undefined && typeof config.wifiSsid !== 'string') return 'wifiSsid must be a string';
  if (config.wifiPassword !== undefined && typeof config.wifiPassword !== 'string') return 'wifiPassword must be a string';
  return null;
}
