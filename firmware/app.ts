// The example application (issue 5): reads the sensors every reportIntervalSec (a cloud-owned
// key) and emits telemetry events, reports its battery and firmware as device-owned state, mirrors
// the cloud-owned `led` key to the LED, asks the cloud for the weather (a proxied RPC) when the
// button is pressed, and reports its sync status as a device-status event after every sync.
import { Device, deviceDefaults, type DeviceHardware } from './core/device.ts';
import type { Flash } from './hal/flash.ts';
import type { DeviceConfig } from './protocol/device-config.ts';
import { keyIdOf } from './protocol/state-template.ts';
import { rpcStatusOk } from './protocol/sync-messages.ts';
import type { WireValue } from './protocol/template.ts';
import { demoStateTemplate } from './protocol/templates/demo-state.ts';
import { deviceStatusTemplate } from './protocol/templates/device-status.ts';
import { telemetryTemplate } from './protocol/templates/telemetry.ts';
import type { Button, Indicator, Sensors } from './hal/sensors.ts';

export const firmwareVersion = '0.1.0';

const keyLed = keyIdOf(demoStateTemplate, 'led');
const keyInterval = keyIdOf(demoStateTemplate, 'reportIntervalSec');
const keyBattery = keyIdOf(demoStateTemplate, 'batteryMv');
const keyFirmware = keyIdOf(demoStateTemplate, 'firmware');
const keyBootCount = keyIdOf(demoStateTemplate, 'bootCount');
const defaultIntervalSec = 10;
/** Battery changes smaller than this are not worth a flash write and an uplink. */
const batteryReportStepMv = 20;

export interface ApplicationHardware extends DeviceHardware {
  /** The durable event cache's flash area (null: events in RAM only). */
  eventFlash: Flash | null;
  sensors: Sensors;
  indicator: Indicator;
  button: Button;
}

export class Application {
  declare readonly device: Device;
  declare private readonly hardware: ApplicationHardware;
  declare private readonly telemetry: WireValue[];
  declare private readonly status: WireValue[];
  declare private readonly readBound: () => void;
  declare private readTimer: number;
  declare private lastSyncEpochMs: number;
  declare private lastSyncOk: boolean;
  declare private syncs: number;

  constructor(hardware: ApplicationHardware, config: DeviceConfig) {
    this.hardware = hardware;
    const self = this;
    const options = deviceDefaults(demoStateTemplate, [telemetryTemplate, deviceStatusTemplate]);
    options.eventFlash = hardware.eventFlash;
    if (config.eventFlashFlushMs !== undefined) options.eventFlashFlushMs = config.eventFlashFlushMs;
    this.device = new Device(hardware, config, options, {
      onStateChanged: function (keyId: number) {
        self.stateChanged(keyId);
      },
      onMessage: function (seq: number, body: string) {
        hardware.log.info('message ' + seq + ': ' + body);
      },
      onSyncOutcome: function (ok: boolean) {
        self.syncDone(ok);
      },
    });
    this.telemetry = [0, 0, 0, 0];
    this.status = [0, false, 0, 'never', 0, 0, 0, 0, 0, 0, 0, 0];
    this.readTimer = -1;
    this.lastSyncEpochMs = 0;
    this.lastSyncOk = false;
    this.syncs = 0;
    this.readBound = function () {
      self.readTimer = -1;
      self.read();
    };
  }

  start(): void {
    const state = this.device.state;
    const boots = state.getNumber(keyBootCount);
    state.setNumber(keyBootCount, (boots === undefined ? 0 : boots) + 1);
    if (state.getString(keyFirmware) !== firmwareVersion) state.setString(keyFirmware, firmwareVersion);
    this.stateChanged(keyLed);
    const self = this;
    this.hardware.button.watch(function () {
      self.buttonPressed();
    });
    this.device.start();
    this.read();
  }

  stop(): void {
    if (this.readTimer >= 0) this.hardware.timers.clearTimeout(this.readTimer);
    this.readTimer = -1;
    this.device.stop();
  }

  /** One reading: a telemetry event, and the battery as state when it moved enough. */
  private read(): void {
    const sensors = this.hardware.sensors;
    const values = this.telemetry;
    values[0] = this.hardware.clock.epochMs();
    values[1] = sensors.readTemperatureC();
    values[2] = sensors.readHumidityPercent();
    const battery = sensors.readBatteryMv();
    values[3] = battery;
    const seq = this.device.emit(telemetryTemplate, values);
    if (seq < 0) this.hardware.log.warn('telemetry not cached (' + seq + ')');
    const reported = this.device.state.getNumber(keyBattery);
    if (reported === undefined || Math.abs(reported - battery) >= batteryReportStepMv) this.device.state.setNumber(keyBattery, battery);
    const interval = this.device.state.getNumber(keyInterval);
    const seconds = interval === undefined || interval < 1 ? defaultIntervalSec : interval;
    this.readTimer = this.hardware.timers.setTimeout(this.readBound, seconds * 1000);
  }

  private stateChanged(keyId: number): void {
    if (keyId === keyLed) {
      const on = this.device.state.getBool(keyLed) === true;
      this.hardware.indicator.setLed(on);
      this.hardware.log.info('led ' + (on ? 'on' : 'off'));
    } else if (keyId === keyInterval) {
      this.hardware.log.info('report interval ' + this.device.state.getNumber(keyInterval) + ' s');
    }
  }

  private buttonPressed(): void {
    const log = this.hardware.log;
    log.info('button: asking the cloud for the weather');
    const id = this.device.sync.call('weather', '{"city":"Oslo"}', 300, function (status: number, body: string) {
      log.info('weather: ' + (status === rpcStatusOk ? body : 'failed (status ' + status + ') ' + body));
    });
    if (id < 0) log.warn('weather: too many requests waiting');
  }

  /** [WIRE-26] After every sync, the status as an event (the cloud keeps it as state `status`). */
  private syncDone(ok: boolean): void {
    this.syncs++;
    this.lastSyncOk = ok;
    this.lastSyncEpochMs = this.hardware.clock.epochMs();
    // Only every tenth sync in continuous mode: a status event per ack would double the traffic.
    if (this.syncs % 10 !== 1) return;
    const device = this.device;
    const sync = device.sync.status;
    const values = this.status;
    values[0] = this.lastSyncEpochMs;
    values[1] = sync.connected;
    values[2] = this.lastSyncEpochMs;
    values[3] = this.lastSyncOk ? 'ok' : 'failed';
    // Events held in RAM and on flash, earlier boots' included.
    const held = device.cache.count + (device.spill !== null ? device.spill.heldCount() : 0);
    values[4] = held > 65535 ? 65535 : held;
    values[5] = device.cache.bytesUsed;
    values[6] = device.sync.oldestEventAgeSec();
    values[7] = device.cache.droppedCount;
    values[8] = sync.duplicates;
    values[9] = sync.conflicts;
    values[10] = device.epoch;
    values[11] = Math.floor(this.hardware.clock.nowMs() / 1000);
    device.emit(deviceStatusTemplate, values);
  }
}
