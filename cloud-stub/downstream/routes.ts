// Downstream routes: each route follows the committed events and the state-change log behind its
// own durable cursor in the cloud database, delivers bounded batches in id order at least once,
// retries with exponential backoff, and (when the route allows it) turns a batch that keeps
// failing into a dead letter. Routes never touch the ingest path: a slow or dead destination only
// makes its own lag grow.
import { downstreamPollMs } from '../../firmware/protocol/limits.ts';
import type { Template } from '../../firmware/protocol/template.ts';
import type { Metrics } from '../metrics.ts';
import type { Log } from '../transport.ts';
import type { DownstreamCursor, DownstreamStream, Repository } from '../storage/repository.ts';
import { publicView, type RouteConfig } from './config.ts';
import { eventJson, stateChangeJson, type Destination } from './destination.ts';
import { MqttRepublishDestination } from './mqtt-republish.ts';
import { NdjsonDestination } from './ndjson.ts';
import { PostgresTypedDestination } from './postgres-typed.ts';
import { WebhookDestination } from './webhook.ts';

export interface RouteStatus {
  name: string;
  type: string;
  target: string;
  streams: DownstreamStream[];
  cursor: DownstreamCursor;
  /** Events and state changes committed but not yet delivered by this route. */
  lag: { events: number; stateChanges: number };
  delivered: { events: number; stateChanges: number };
  failures: number;
  deadLetters: number;
  /** Attempts of the batch now being retried (0 when the route is healthy). */
  attempts: number;
  lastError: string | null;
  lastErrorAtMs: number | null;
}

export interface DownstreamOptions {
  repository: Repository;
  metrics: Metrics;
  log: Log;
  templates: Template[];
  now?: () => number;
  /** Idle poll interval (tests shorten it). */
  pollMs?: number;
  /** Builds a destination; tests may substitute one. */
  createDestination?: (route: RouteConfig) => Destination;
}

export function createDestination(route: RouteConfig, templates: Template[]): Destination {
  const d = route.destination;
  switch (d.type) {
    case 'webhook':
      return new WebhookDestination(route.name, d.url, d.headers);
    case 'ndjson':
      return new NdjsonDestination(d.dir);
    case 'postgres':
      return new PostgresTypedDestination(d.url, d.schema, templates);
    case 'mqtt':
      return new MqttRepublishDestination(route.name, d.url, d.topicPrefix, d.qos, { username: d.username, password: d.password });
  }
}

class RouteRunner {
  cursor: DownstreamCursor = { eventId: 0, stateChangeId: 0 };
  readonly delivered = { events: 0, stateChanges: 0 };
  failures = 0;
  deadLetters = 0;
  attempts = 0;
  lastError: string | null = null;
  lastErrorAtMs: number | null = null;
  private closed = false;
  private wakeUp: (() => void) | null = null;
  private backingOff = false;
  private loop: Promise<void> | null = null;
  private readonly abort = new AbortController();

  constructor(
    readonly config: RouteConfig,
    private readonly destination: Destination,
    private readonly options: DownstreamOptions & { pollMs: number; now: () => number },
  ) {}

  async start(): Promise<void> {
    const { repository } = this.options;
    const initial = this.config.from === 'now' ? await repository.downstreamHeads() : { eventId: 0, stateChangeId: 0 };
    this.cursor = await repository.openDownstreamCursor(this.config.name, initial);
    this.deadLetters = await repository.countDeadLetters(this.config.name);
    this.loop = this.run();
  }

  /** New commits: look now instead of at the next poll (a backoff is not cut short). */
  wake(): void {
    if (!this.backingOff) this.wakeUp?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = () => {
        this.wakeUp = null;
        done();
      };
    });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      let progressed = false;
      try {
        // One batch of each stream per round, so a flood of events cannot starve state changes.
        for (const stream of this.config.streams) {
          if (this.closed) break;
          if (await this.step(stream)) progressed = true;
        }
      } catch (error) {
        // Reading the cloud database failed (it is the source, not the destination): wait a poll.
        this.noteError(`reading the cloud store: ${(error as Error).message}`);
      }
      if (this.closed) break;
      if (this.attempts > 0) {
        this.backingOff = true;
        const delay = Math.min(this.config.backoffMsMax, this.config.backoffMs * 2 ** (this.attempts - 1));
        await this.sleep(delay);
        this.backingOff = false;
      } else if (!progressed) {
        await this.sleep(this.options.pollMs);
      }
    }
  }

  private noteError(message: string): void {
    this.lastError = message;
    this.lastErrorAtMs = this.options.now();
  }

  /** Delivers the next batch of one stream; true when a batch was delivered or dead-lettered. */
  private async step(stream: DownstreamStream): Promise<boolean> {
    const { repository, metrics } = this.options;
    const name = this.config.name;
    const after = stream === 'events' ? this.cursor.eventId : this.cursor.stateChangeId;
    const items = stream === 'events' ? await repository.eventsAfter(after, this.config.batchMax) : await repository.stateChangesAfter(after, this.config.batchMax);
    if (items.length === 0) return false;
    const lastId = items[items.length - 1]!.id;
    const timeout = AbortSignal.any([AbortSignal.timeout(this.config.timeoutMs), this.abort.signal]);
    try {
      if (stream === 'events') await this.destination.deliverEvents(items as Awaited<ReturnType<Repository['eventsAfter']>>, timeout);
      else await this.destination.deliverStateChanges(items as Awaited<ReturnType<Repository['stateChangesAfter']>>, timeout);
    } catch (error) {
      if (this.closed) return false;
      this.attempts++;
      this.failures++;
      const message = (error as Error).message;
      this.noteError(message);
      metrics.increment('tandem_downstream_failures_total', 1, { route: name });
      if (this.config.maxAttempts === 0 || this.attempts < this.config.maxAttempts) {
        if (this.attempts === 1 || this.attempts % 10 === 0) this.options.log(`downstream ${name}: ${stream} after id ${after} failed (attempt ${this.attempts}): ${message}`);
        return false;
      }
      // Given up: the batch is kept as a dead letter in the same transaction that moves the cursor on.
      const payload = stream === 'events' ? items.map((item) => eventJson(item as Awaited<ReturnType<Repository['eventsAfter']>>[number])) : items.map((item) => stateChangeJson(item as Awaited<ReturnType<Repository['stateChangesAfter']>>[number]));
      await repository.advanceDownstreamCursor(name, stream, lastId, {
        route: name, stream, firstId: items[0]!.id, lastId, payload, error: message, attempts: this.attempts, createdAtMs: this.options.now(),
      });
      this.options.log(`downstream ${name}: ${stream} ${items[0]!.id}..${lastId} dead-lettered after ${this.attempts} attempts: ${message}`);
      this.setCursor(stream, lastId);
      this.deadLetters++;
      metrics.increment('tandem_downstream_dead_letters_total', 1, { route: name });
      this.attempts = 0;
      return true;
    }
    await repository.advanceDownstreamCursor(name, stream, lastId);
    this.setCursor(stream, lastId);
    if (this.attempts > 0) this.options.log(`downstream ${name}: delivering again after ${this.attempts} failed attempts`);
    this.attempts = 0;
    if (stream === 'events') this.delivered.events += items.length;
    else this.delivered.stateChanges += items.length;
    metrics.increment('tandem_downstream_delivered_total', items.length, { route: name, stream });
    return true;
  }

  private setCursor(stream: DownstreamStream, id: number): void {
    if (stream === 'events') this.cursor = { ...this.cursor, eventId: Math.max(this.cursor.eventId, id) };
    else this.cursor = { ...this.cursor, stateChangeId: Math.max(this.cursor.stateChangeId, id) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    this.wakeUp?.();
    await this.loop;
    await this.destination.close();
  }
}

/** Every configured route, started together; `notify()` after commits, `status()` for the API. */
export class DownstreamRoutes {
  private readonly runners: RouteRunner[] = [];

  private constructor(private readonly options: DownstreamOptions) {}

  static async start(routes: RouteConfig[], options: DownstreamOptions): Promise<DownstreamRoutes> {
    const manager = new DownstreamRoutes(options);
    const { metrics } = options;
    metrics.declare('tandem_downstream_lag_events', 'Committed events a downstream route has not delivered yet.', 'gauge');
    metrics.declare('tandem_downstream_lag_state_changes', 'State changes a downstream route has not delivered yet.', 'gauge');
    metrics.declare('tandem_downstream_delivered_total', 'Events and state changes delivered, by route and stream.');
    metrics.declare('tandem_downstream_failures_total', 'Failed delivery attempts, by route.');
    metrics.declare('tandem_downstream_dead_letters_total', 'Batches given up after their route\'s maximum attempts, by route.');
    const full = { ...options, pollMs: options.pollMs ?? downstreamPollMs, now: options.now ?? Date.now };
    try {
      for (const route of routes) {
        const destination = (options.createDestination ?? ((r: RouteConfig) => createDestination(r, options.templates)))(route);
        const runner = new RouteRunner(route, destination, full);
        manager.runners.push(runner);
        await runner.start();
        options.log(`downstream: route '${route.name}' (${String(publicView(route).type)} ${String(publicView(route).target)}) from event ${runner.cursor.eventId}, state change ${runner.cursor.stateChangeId}`);
      }
    } catch (error) {
      await manager.close();
      throw error;
    }
    metrics.collect(async () => {
      if (manager.runners.length === 0) return;
      const heads = await options.repository.downstreamHeads();
      for (const runner of manager.runners) {
        metrics.set('tandem_downstream_lag_events', Math.max(0, heads.eventId - runner.cursor.eventId), { route: runner.config.name });
        metrics.set('tandem_downstream_lag_state_changes', Math.max(0, heads.stateChangeId - runner.cursor.stateChangeId), { route: runner.config.name });
      }
    });
    return manager;
  }

  get routeNames(): string[] {
    return this.runners.map((runner) => runner.config.name);
  }

  /** Something was committed: routes that are idle look at once. */
  notify(): void {
    for (const runner of this.runners) runner.wake();
  }

  async status(): Promise<RouteStatus[]> {
    const heads = this.runners.length === 0 ? { eventId: 0, stateChangeId: 0 } : await this.options.repository.downstreamHeads();
    return this.runners.map((runner) => {
      const view = publicView(runner.config);
      return {
        name: runner.config.name,
        type: String(view.type),
        target: String(view.target),
        streams: runner.config.streams,
        cursor: runner.cursor,
        lag: {
          events: runner.config.streams.includes('events') ? Math.max(0, heads.eventId - runner.cursor.eventId) : 0,
          stateChanges: runner.config.streams.includes('state') ? Math.max(0, heads.stateChangeId - runner.cursor.stateChangeId) : 0,
        },
        delivered: { ...runner.delivered },
        failures: runner.failures,
        deadLetters: runner.deadLetters,
        attempts: runner.attempts,
        lastError: runner.lastError,
        lastErrorAtMs: runner.lastErrorAtMs,
      };
    });
  }

  async close(): Promise<void> {
    for (const runner of this.runners.splice(0).reverse()) {
      try {
        await runner.close();
      } catch (error) {
        this.options.log(`downstream ${runner.config.name}: close: ${(error as Error).message}`);
      }
    }
  }
}
