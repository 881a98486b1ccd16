// The seam between the MQTT side and the sync session: both broker modes (embedded Aedes, external
// broker with shared subscriptions) deliver authenticated uplinks through a DeviceTransport, and
// the session answers through it. The session never sees MQTT packets or sockets.
import type { Metrics } from './metrics.ts';

export type UplinkChannel = 'uplink' | 'presence';

/** One message a device published on its own `t/<id>/u` or `t/<id>/p` topic. */
export interface UplinkMessage {
  deviceId: string;
  channel: UplinkChannel;
  payload: Buffer;
  receivedAtMs: number;
}

/**
 * What a sync session implements. Messages of one device arrive one at a time in the order they
 * were received (the next waits for the previous promise); devices run concurrently. A rejected
 * promise is counted and logged; the session must have answered the device itself where it can.
 */
export interface UplinkHandler {
  handleUplink(message: UplinkMessage): Promise<void>;
  /** A device connected (true) or went away (false). */
  deviceConnection?(deviceId: string, connected: boolean): void;
}

export interface DeviceTransport {
  readonly mode: 'embedded' | 'external';
  /** Installs the handler; messages received before it are handled once it is set. */
  setHandler(handler: UplinkHandler): void;
  /**
   * Publishes to the device's `t/<id>/d`, QoS 1 unless `qos` is 0 (for idempotent, cumulative
   * acknowledgements the device can do without). Resolves when the broker has taken it.
   */
  sendDownlink(deviceId: string, payload: Uint8Array, qos?: 0 | 1): Promise<void>;
  /** Devices connected now (embedded: from the broker; external: from presence messages). */
  connectedDeviceIds(): string[];
  isConnected(deviceId: string): boolean;
  /** Resolves once every uplink received so far has been handled. */
  whenIdle(): Promise<void>;
  close(): Promise<void>;
}

export type Log = (line: string) => void;

/** Messages one device may have waiting for its handler; beyond it they are dropped and counted. */
export const uplinkQueuedPerDeviceMax = 64;

interface DeviceLane {
  queue: UplinkMessage[];
  running: boolean;
}

/**
 * Runs the handler per device in arrival order. Dropping on overflow is safe because nothing is
 * acknowledged to the device before the session has committed it: the device sends it again.
 */
export class UplinkDispatcher {
  private handler: UplinkHandler | null = null;
  private readonly lanes = new Map<string, DeviceLane>();
  private readonly idle: Array<() => void> = [];

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Log,
  ) {}

  setHandler(handler: UplinkHandler): void {
    this.handler = handler;
    for (const [deviceId, lane] of this.lanes) if (!lane.running && lane.queue.length > 0) void this.drain(deviceId, lane);
  }

  connection(deviceId: string, connected: boolean): void {
    try {
      this.handler?.deviceConnection?.(deviceId, connected);
    } catch (error) {
      this.log(`sync session failed on ${connected ? 'connect' : 'disconnect'} of ${deviceId}: ${(error as Error).message}`);
    }
  }

  dispatch(message: UplinkMessage): void {
    this.metrics.increment('tandem_uplink_messages_total');
    let lane = this.lanes.get(message.deviceId);
    if (lane === undefined) {
      lane = { queue: [], running: false };
      this.lanes.set(message.deviceId, lane);
    }
    if (lane.queue.length >= uplinkQueuedPerDeviceMax) {
      this.metrics.increment('tandem_uplink_dropped_total');
      return;
    }
    lane.queue.push(message);
    if (!lane.running && this.handler !== null) void this.drain(message.deviceId, lane);
  }

  private async drain(deviceId: string, lane: DeviceLane): Promise<void> {
    lane.running = true;
    while (lane.queue.length > 0 && this.handler !== null) {
      const message = lane.queue.shift()!;
      try {
        await this.handler.handleUplink(message);
      } catch (error) {
        this.metrics.increment('tandem_uplink_errors_total');
        this.log(`uplink from ${deviceId} failed: ${(error as Error).message}`);
      }
    }
    lane.running = false;
    if (lane.queue.length === 0) this.lanes.delete(deviceId);
    if (this.lanes.size === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  /** Resolves once every received message has been handled (used by stop() and tests). */
  whenIdle(): Promise<void> {
    if (this.lanes.size === 0 || this.handler === null) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}

/** Parses `t/<id>/u` or `t/<id>/p` into its device and channel; null for anything else. */
export function parseUplinkTopic(topic: string): { deviceId: string; channel: UplinkChannel } | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[0] !== 't' || parts[1]!.length === 0) return null;
  if (parts[2] === 'u') return { deviceId: parts[1]!, channel: 'uplink' };
  if (parts[2] === 'p') return { deviceId: parts[1]!, channel: 'presence' };
  return null;
}
