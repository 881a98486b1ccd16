// A TCP proxy for tests that damages the byte stream the way real links do. Fault model, all drawn
// from one seeded generator per connection: each chunk may be split into pieces at random points;
// each piece may be delayed (order is always kept); each connection may be cut (both sides
// destroyed, no goodbye) after a random number of bytes, possibly in the middle of a packet.
// Tests can also cut every connection at once, or freeze them (bytes held, not dropped) to play a
// link that silently stops.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { seededRandom as generator } from './seeded-random.ts';

export interface TcpFaultProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Seed of the fault generator; connection n uses seed + n, so a run replays its faults. */
  seed: number;
  /** Chance (0..1) that a chunk is split into 2..5 pieces at random points. Default 0. */
  splitChance?: number;
  /** Each piece waits a random 0..maxDelayMs before it is forwarded. Default 0. */
  maxDelayMs?: number;
  /**
   * Each connection is cut after a random number of bytes (both directions counted) in
   * [cutAfterBytesMin, cutAfterBytesMax]. Default: never cut.
   */
  cutAfterBytesMin?: number;
  cutAfterBytesMax?: number;
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class ProxyConnection {
  frozen = false;
  closed = false;
  private thawWaiters: Array<() => void> = [];
  private budget: number;
  readonly random: () => number;

  constructor(
    readonly proxy: TcpFaultProxy,
    readonly client: Socket,
    readonly target: Socket,
    seed: number,
  ) {
    this.random = generator(seed);
    const options = proxy.options;
    const min = options.cutAfterBytesMin;
    const max = options.cutAfterBytesMax ?? min;
    this.budget = min === undefined || max === undefined ? Infinity : min + Math.floor(this.random() * (max - min + 1));
    new Pipe(this, client, target);
    new Pipe(this, target, client);
  }

  /** How many of `bytes` may still pass before the cut. */
  take(bytes: number): number {
    const allowed = Math.min(bytes, this.budget);
    this.budget -= allowed;
    return allowed;
  }

  get exhausted(): boolean {
    return this.budget <= 0;
  }

  cut(): void {
    if (this.closed) return;
    this.proxy.cuts++;
    this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.target.destroy();
    this.thaw();
    this.proxy.forget(this);
  }

  waitThawed(): Promise<void> {
    return this.frozen ? new Promise((resolve) => this.thawWaiters.push(resolve)) : Promise.resolve();
  }

  thaw(): void {
    this.frozen = false;
    const waiters = this.thawWaiters;
    this.thawWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** One direction of a connection: split, delay, count, forward in order. */
class Pipe {
  private readonly queue: Buffer[] = [];
  private draining = false;
  private ended = false;

  constructor(
    private readonly connection: ProxyConnection,
    from: Socket,
    private readonly to: Socket,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk));
    from.on('end', () => {
      this.ended = true;
      if (!this.draining) this.finish();
    });
    from.on('error', () => undefined);
    from.on('close', () => {
      // The other side learns of an abrupt close as soon as its pending bytes are through.
      this.ended = true;
      if (!this.draining) this.finish();
    });
  }

  private push(chunk: Buffer): void {
    const connection = this.connection;
    const options = connection.proxy.options;
    if (options.splitChance !== undefined && connection.random() < options.splitChance && chunk.length > 1) {
      const points = new Set<number>();
      const count = 1 + Math.floor(connection.random() * 4);
      for (let i = 0; i < count; i++) points.add(1 + Math.floor(connection.random() * (chunk.length - 1)));
      let start = 0;
      for (const point of [...points].sort((a, b) => a - b)) {
        this.queue.push(chunk.subarray(start, point));
        start = point;
      }
      this.queue.push(chunk.subarray(start));
    } else {
      this.queue.push(chunk);
    }
    if (!this.draining) void this.drain();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    const connection = this.connection;
    const maxDelayMs = connection.proxy.options.maxDelayMs ?? 0;
    while (this.queue.length > 0 && !connection.closed) {
      await connection.waitThawed();
      if (maxDelayMs > 0) await sleep(Math.floor(connection.random() * (maxDelayMs + 1)));
      if (connection.closed) break;
      const piece = this.queue.shift()!;
      const allowed = connection.take(piece.length);
      if (allowed > 0 && !this.to.destroyed) this.to.write(piece.subarray(0, allowed));
      connection.proxy.bytesForwarded += allowed;
      if (connection.exhausted) {
        // Let the partial piece leave before the reset, so the cut lands mid-packet.
        await sleep(1);
        connection.cut();
      }
    }
    this.draining = false;
    if (this.ended) this.finish();
  }

  private finish(): void {
    if (this.connection.closed) return;
    this.connection.destroy();
  }
}

export class TcpFaultProxy {
  readonly options: TcpFaultProxyOptions;
  /** Connections accepted so far. */
  connections = 0;
  /** Connections cut by the fault model or cutAll(). */
  cuts = 0;
  bytesForwarded = 0;
  private readonly server: Server;
  private readonly open = new Set<ProxyConnection>();

  private constructor(options: TcpFaultProxyOptions) {
    this.options = options;
    this.server = createServer((client) => {
      client.setNoDelay(true);
      const target = connect({ host: options.targetHost, port: options.targetPort });
      target.setNoDelay(true);
      const connection = new ProxyConnection(this, client, target, options.seed + this.connections++);
      this.open.add(connection);
    });
  }

  /** Starts listening on a free loopback port. */
  static async start(options: TcpFaultProxyOptions): Promise<TcpFaultProxy> {
    const proxy = new TcpFaultProxy(options);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy is not listening');
    return address.port;
  }

  /** Cuts every open connection now. */
  cutAll(): void {
    for (const connection of [...this.open]) connection.cut();
  }

  /** Open connections stop forwarding (bytes are held, not dropped) until thawAll(); new ones flow. */
  freezeAll(): void {
    for (const connection of this.open) connection.frozen = true;
  }

  thawAll(): void {
    for (const connection of this.open) connection.thaw();
  }

  /** Connections now open. */
  get openConnections(): number {
    return this.open.size;
  }

  forget(connection: ProxyConnection): void {
    this.open.delete(connection);
  }

  async close(): Promise<void> {
    for (const connection of [...this.open]) connection.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
