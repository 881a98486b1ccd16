// Time for the sandbox, injected: real host timers by default, or a virtual clock that only moves
// when told to (`advance(ms)`), so a fleet of sandboxes can share one deterministic timeline.

export interface SandboxScheduler {
  /** Monotonic milliseconds since the scheduler was made. */
  nowMs(): number;
  /** Wall-clock milliseconds since the Unix epoch as the device sees it. */
  epochMs(): number;
  /** Runs `callback` once after `delayMs`. Returns a handle for cancel(). */
  schedule(delayMs: number, callback: () => void): number;
  cancel(handle: number): void;
}

/** Host timers and host time. */
export class RealScheduler implements SandboxScheduler {
  private readonly originMs = performance.now();
  private readonly pending = new Map<number, NodeJS.Timeout>();
  private nextHandle = 1;

  nowMs(): number {
    return performance.now() - this.originMs;
  }

  epochMs(): number {
    return Date.now();
  }

  schedule(delayMs: number, callback: () => void): number {
    const handle = this.nextHandle++;
    const timeout = setTimeout(() => {
      this.pending.delete(handle);
      callback();
    }, Math.max(0, delayMs));
    this.pending.set(handle, timeout);
    return handle;
  }

  cancel(handle: number): void {
    const timeout = this.pending.get(handle);
    if (timeout !== undefined) clearTimeout(timeout);
    this.pending.delete(handle);
  }
}

interface VirtualTimer {
  handle: number;
  dueMs: number;
  callback: () => void;
}

/**
 * A virtual clock: nothing runs until advance(). Timers due at the same time run in the order they
 * were scheduled, so a run replays exactly. Socket I/O is real and is not governed by this clock.
 */
export class VirtualScheduler implements SandboxScheduler {
  private now = 0;
  private nextHandle = 1;
  private timers: VirtualTimer[] = [];
  private readonly startEpochMs: number;

  constructor(startEpochMs = Date.UTC(2026, 0, 1)) {
    this.startEpochMs = startEpochMs;
  }

  nowMs(): number {
    return this.now;
  }

  epochMs(): number {
    return this.startEpochMs + this.now;
  }

  schedule(delayMs: number, callback: () => void): number {
    const handle = this.nextHandle++;
    const timer = { handle, dueMs: this.now + Math.max(0, delayMs), callback };
    // Keep the list sorted by due time, then by handle (insertion order).
    let index = this.timers.length;
    while (index > 0 && this.timers[index - 1]!.dueMs > timer.dueMs) index--;
    this.timers.splice(index, 0, timer);
    return handle;
  }

  cancel(handle: number): void {
    const index = this.timers.findIndex((timer) => timer.handle === handle);
    if (index >= 0) this.timers.splice(index, 1);
  }

  /** Timers still waiting. */
  get pendingCount(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const target = this.now + Math.max(0, ms);
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.dueMs > target) break;
      this.timers.shift();
      this.now = Math.max(this.now, next.dueMs);
      next.callback();
    }
    this.now = target;
  }
}
