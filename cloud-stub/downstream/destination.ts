// What a downstream destination does: take one batch of committed events or state changes and
// resolve only when the destination has it durably (or reject). The route runner owns retries,
// backoff, cursors and dead letters, so a destination is just "deliver this batch once".
import type { StateChange, StoredEvent } from '../storage/repository.ts';

export interface Destination {
  /** Delivers events in id order; a rejection means "not delivered, try again". */
  deliverEvents(events: StoredEvent[], signal: AbortSignal): Promise<void>;
  deliverStateChanges(changes: StateChange[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** The JSON form of an event downstream (webhook bodies, NDJSON lines, MQTT payloads). */
export function eventJson(event: StoredEvent): Record<string, unknown> {
  return {
    id: event.id,
    deviceId: event.deviceId,
    epoch: event.epoch,
    seq: event.seq,
    template: event.templateId,
    ts: event.ts,
    receivedAtMs: event.receivedAtMs,
    fields: event.fields,
  };
}

export function stateChangeJson(change: StateChange): Record<string, unknown> {
  return { id: change.id, deviceId: change.deviceId, side: change.side, key: change.key, value: change.value, version: change.version, ts: change.ts };
}

/** Rejects when the signal aborts (an attempt's timeout), so a hung destination cannot stall a route. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('attempt timed out'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('attempt timed out'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
