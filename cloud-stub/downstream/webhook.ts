// Webhook destination: one HTTP POST per batch, `{ route, stream, items }` as JSON, with an
// `Idempotency-Key` naming the ids it covers so a receiver can drop a redelivery. Any answer but
// 2xx is a failure; the runner retries with backoff and dead-letters after maxAttempts.
import type { StateChange, StoredEvent } from '../storage/repository.ts';
import { eventJson, stateChangeJson, type Destination } from './destination.ts';

export class WebhookDestination implements Destination {
  constructor(
    private readonly route: string,
    private readonly url: string,
    private readonly headers: Record<string, string>,
  ) {}

  deliverEvents(events: StoredEvent[], signal: AbortSignal): Promise<void> {
    return this.post('events', events[0]!.id, events[events.length - 1]!.id, events.map(eventJson), signal);
  }

  deliverStateChanges(changes: StateChange[], signal: AbortSignal): Promise<void> {
    return this.post('state', changes[0]!.id, changes[changes.length - 1]!.id, changes.map(stateChangeJson), signal);
  }

  private async post(stream: string, firstId: number, lastId: number, items: unknown[], signal: AbortSignal): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { ...this.headers, 'content-type': 'application/json', 'idempotency-key': `${this.route}:${stream}:${firstId}-${lastId}` },
      body: JSON.stringify({ route: this.route, stream, firstId, lastId, items }),
      signal,
    });
    // Drain the body so the connection can be reused.
    const text = await response.text();
    if (response.status < 200 || response.status > 299) throw new Error(`HTTP ${response.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`);
  }

  async close(): Promise<void> {}
}
