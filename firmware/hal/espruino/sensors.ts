// The example application's hardware on Espruino: the chip's own temperature sensor where the board
// has one (E.getTemperature), the on-board LED (LED1, or pin D2 on ESP32 devkits) and button (BTN,
// or D0). A bare board has no humidity sensor or battery divider, and an emulator has none of
// these: those readings are slow random walks, so the demo has something to report.
import type { Button, Indicator, Sensors } from '../sensors.ts';

function walk(value: number, scale: number, min: number, max: number): number {
  const next = value + (Math.random() - 0.5) * 2 * scale;
  return next < min ? min : next > max ? max : next;
}

export class EspruinoSensors implements Sensors {
  private declare temperature: number;
  private declare humidity: number;
  private declare battery: number;

  constructor() {
    this.temperature = 21;
    this.humidity = 45;
    this.battery = 3900;
  }

  readTemperatureC(): number {
    const e = E as unknown as { getTemperature?: () => number };
    const measured = typeof e.getTemperature === 'function' ? e.getTemperature() : NaN;
    this.temperature = isFinite(measured) && measured > -40 && measured < 125 ? measured : walk(this.temperature, 0.2, -20, 60);
    return Math.round(this.temperature * 10) / 10;
  }

  readHumidityPercent(): number {
    this.humidity = walk(this.humidity, 0.7, 0, 100);
    return Math.round(this.humidity);
  }

  readBatteryMv(): number {
    this.battery = walk(this.battery - 0.05, 1, 3000, 4200);
    return Math.round(this.battery);
  }
}

/** The pin a global names (LED1, BTN) where the board defines it, else the fallback pin name. */
function boardPin(name: string, fallback: string): unknown {
  const globals = global as unknown as Record<string, unknown>;
  if (globals[name] !== undefined) return globals[name];
  return globals[fallback];
}

export class EspruinoIndicator implements Indicator {
  setLed(on: boolean): void {
    const pin = boardPin('LED1', 'D2');
    if (pin !== undefined && typeof digitalWrite === 'function') digitalWrite(pin as Pin, on ? 1 : 0);
  }
}

export class EspruinoButton implements Button {
  watch(pressed: () => void): void {
    const pin = boardPin('BTN', 'D0');
    if (pin === undefined || typeof setWatch !== 'function') return;
    setWatch(pressed, pin as Pin, { repeat: true, edge: 'falling', debounce: 50 });
  }
}
