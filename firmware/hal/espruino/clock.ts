// The HAL Clock and Timers over Espruino's getTime() (float seconds) and setTimeout.
import type { Clock, Timers } from '../clock.ts';

export class EspruinoClock implements Clock {
  private declare originSeconds: number;
  private declare lastMs: number;

  constructor() {
    this.originSeconds = getTime();
    this.lastMs = 0;
  }

  nowMs(): number {
    // getTime() jumps when the time is set (SNTP, setTime): never let monotonic time go back.
    const ms = Math.floor((getTime() - this.originSeconds) * 1000);
    if (ms > this.lastMs) this.lastMs = ms;
    return this.lastMs;
  }

  epochMs(): number {
    return Date.now();
  }
}

export class EspruinoTimers implements Timers {
  setTimeout(callback: () => void, delayMs: number): number {
    return setTimeout(callback, delayMs);
  }

  clearTimeout(handle: number): void {
    clearTimeout(handle);
  }
}
