// The example application's hardware: a few sensors, an LED and a button. On a board they are
// pins and ADCs; in the emulators they are simulated from the seeded Random (hal-mocks).

export interface Sensors {
  /** Degrees Celsius. */
  readTemperatureC(): number;
  /** Relative humidity, percent. */
  readHumidityPercent(): number;
  /** Battery voltage, millivolts. */
  readBatteryMv(): number;
}

export interface Indicator {
  setLed(on: boolean): void;
}

export interface Button {
  /** Calls `pressed` on every press; one callback for the device's life. */
  watch(pressed: () => void): void;
}
