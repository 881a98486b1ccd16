// NDJSON destination: one line per event or state change, appended to one file per UTC day
// (`tandem-YYYY-MM-DD.ndjson`, by the record's commit time, so a redelivered record lands in the
// same file) and fsynced before the batch counts as delivered. At start it reads the tail of the
// newest file, so a batch written just before a crash (cursor not yet moved) is not written twice.
import { mkdirSync, readdirSync, openSync, readSync, fstatSync, closeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { DownstreamStream, StateChange, StoredEvent } from '../storage/repository.ts';
import { eventJson, stateChangeJson, type Destination } from './destination.ts';

const filePattern = /^tandem-(\d{4}-\d{2}-\d{2})\.ndjson$/;
const tailBytes = 256 * 1024;

export function ndjsonFileName(ms: number): string {
  return `tandem-${new Date(ms).toISOString().slice(0, 10)}.ndjson`;
}

export class NdjsonDestination implements Destination {
  /** Highest id already in the files, per stream: lines at or below it are not written again. */
  private readonly written: Record<DownstreamStream, number> = { events: 0, state: 0 };

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    const newest = readdirSync(dir).filter((name) => filePattern.test(name)).sort().pop();
    if (newest !== undefined) this.scanTail(join(dir, newest));
  }

  private scanTail(path: string): void {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      const length = Math.min(size, tailBytes);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      for (const line of buffer.toString('utf8').split('\n')) {
        try {
          const record = JSON.parse(line) as { stream?: unknown; id?: unknown };
          if ((record.stream === 'events' || record.stream === 'state') && typeof record.id === 'number') {
            this.written[record.stream] = Math.max(this.written[record.stream], record.id);
          }
        } catch {
          // The first line of the tail may be cut, and a torn last line is rewritten anyway.
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  deliverEvents(events: StoredEvent[], _signal?: AbortSignal): Promise<void> {
    return this.append('events', events.map((event) => ({ id: event.id, dayMs: event.receivedAtMs, json: eventJson(event) })));
  }

  deliverStateChanges(changes: StateChange[], _signal?: AbortSignal): Promise<void> {
    return this.append('state', changes.map((change) => ({ id: change.id, dayMs: change.ts, json: stateChangeJson(change) })));
  }

  private async append(stream: DownstreamStream, records: Array<{ id: number; dayMs: number; json: Record<string, unknown> }>): Promise<void> {
    const byFile = new Map<string, string[]>();
    for (const record of records) {
      if (record.id <= this.written[stream]) continue;
      const file = ndjsonFileName(record.dayMs);
      let lines = byFile.get(file);
      if (lines === undefined) byFile.set(file, (lines = []));
      lines.push(JSON.stringify({ stream, ...record.json }));
    }
    for (const [file, lines] of byFile) {
      const handle = await open(join(this.dir, file), 'a');
      try {
        await handle.write(`${lines.join('\n')}\n`);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
    const last = records[records.length - 1];
    if (last !== undefined) this.written[stream] = Math.max(this.written[stream], last.id);
  }

  async close(): Promise<void> {}
}
