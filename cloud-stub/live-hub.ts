// The in-process fan-out of what happens in the cloud (committed events, state changes, queue
// changes, connections) to the Server-Sent Events stream, the dashboard and the sync session,
// which uses it to push desired changes and new messages to connected devices.

export type LiveUpdate =
  | { type: 'event'; deviceId: string; epoch: number; seq: number; templateId: string; ts: number; fields: unknown }
  | { type: 'reported'; deviceId: string; keys: string[] }
  | { type: 'desired'; deviceId: string; desiredVersion: number; keys: string[] }
  | { type: 'message-queued'; deviceId: string; seq: number }
  | { type: 'message-expired'; deviceId: string; seq: number }
  | { type: 'connection'; deviceId: string; connected: boolean }
  /** [SYNC-32] A change to a key the other side owns; the owner's value stands. */
  | { type: 'conflict'; deviceId: string; key: string; owner: 'device' | 'cloud'; detail: string };

export type LiveListener = (update: LiveUpdate) => void;

export class LiveHub {
  private readonly listeners = new Set<LiveListener>();

  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** True when someone listens: lets the ingest path skip building updates nobody reads. */
  get active(): boolean {
    return this.listeners.size > 0;
  }

  publish(update: LiveUpdate): void {
    for (const listener of this.listeners) {
      // One failing listener must not keep the update from the others.
      try {
        listener(update);
      } catch {
        // Listeners own their errors; the SSE writer drops its client itself.
      }
    }
  }
}
