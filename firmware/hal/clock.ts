// Time, injected so that tests and the fleet simulation run on a virtual clock.

export interface Clock {
  /** Monotonic milliseconds since an arbitrary origin (boot). Never goes backwards. */
  nowMs(): number;
  /** Wall-clock milliseconds since the Unix epoch, as well as the device knows it. May jump. */
  epochMs(): number;
}

/** Timers, the only way core code schedules work. Handles are opaque numbers. */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): number;
  clearTimeout(handle: number): void;
}
