// Batched, durable ingest with group commit: calls from many devices that arrive within a couple
// of milliseconds share one transaction (one fsync), each caller's promise resolves only after
// that commit, so the session acknowledges committed events only. A group is capped in rows, and
// the cap adapts to the measured cost per row so one synchronous SQLite transaction (fsync
// included) stays near `ingestCommitMsTarget` instead of holding the event loop for long.
import { ingestCommitMsTarget, ingestGroupRowsMax, ingestGroupRowsMin, ingestGroupWaitMsMax, ingestPendingRowsMax } from '../firmware/protocol/limits.ts';
import type { Metrics } from './metrics.ts';
import type { EventInput, IngestBatch, IngestResult, Repository } from './storage/repository.ts';

export type IngestOutcome = ({ outcome: 'committed' } & IngestResult) | { outcome: 'overloaded' };

/** What a committed batch looks like to listeners (live stream, downstream routes). */
export interface CommittedBatch {
  deviceId: string;
  epoch: number;
  /** Only the rows that were new: duplicates never go downstream twice. */
  rows: EventInput[];
  committedAtMs: number;
}

export interface IngestQueueOptions {
  groupRowsMax?: number;
  groupWaitMs?: number;
  /** Target transaction duration; 0 disables the adaptive cap (groupRowsMax only). */
  commitMsTarget?: number;
  pendingRowsMax?: number;
  now?: () => number;
  /** Called after each commit with the new rows of every batch in it. */
  onCommitted?: (batches: CommittedBatch[]) => void;
}

interface Pending {
  batch: IngestBatch;
  resolve: (outcome: IngestOutcome) => void;
  reject: (error: Error) => void;
}

export class IngestQueue {
  private pending: Pending[] = [];
  private pendingRows = 0;
  private timer: NodeJS.Timeout | null = null;
  private committing = false;
  private closed = false;
  private readonly groupRowsMax: number;
  private readonly groupWaitMs: number;
  private readonly commitMsTarget: number;
  /** Smoothed cost of one row in a transaction, measured; null before the first commit. */
  private msPerRow: number | null = null;
  private readonly pendingRowsMax: number;
  private readonly now: () => number;
  private readonly idle: Array<() => void> = [];

  constructor(
    private readonly repository: Repository,
    private readonly metrics: Metrics,
    private readonly options: IngestQueueOptions = {},
  ) {
    this.groupRowsMax = options.groupRowsMax ?? ingestGroupRowsMax;
    this.groupWaitMs = options.groupWaitMs ?? ingestGroupWaitMsMax;
    // Only SQLite blocks the event loop during a transaction; PostgreSQL commits asynchronously
    // and gains from larger groups, so it is capped by rows only.
    this.commitMsTarget = options.commitMsTarget ?? (repository.kind === 'sqlite' ? ingestCommitMsTarget : 0);
    this.pendingRowsMax = options.pendingRowsMax ?? ingestPendingRowsMax;
    this.now = options.now ?? Date.now;
  }

  /**
   * Commits one device's rows (with others, in one transaction) and resolves after the commit.
   * `overloaded` is an operating error: too much is waiting, the device should retry later.
   */
  ingest(deviceId: string, epoch: number, rows: EventInput[]): Promise<IngestOutcome> {
    if (this.closed) return Promise.reject(new Error('ingest queue is closed'));
    if (rows.length === 0) return Promise.resolve({ outcome: 'committed', inserted: 0, duplicates: 0, insertedSeqs: [] });
    if (this.pendingRows + rows.length > this.pendingRowsMax) {
      this.metrics.increment('tandem_ingest_overloaded_total');
      return Promise.resolve({ outcome: 'overloaded' });
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ batch: { deviceId, epoch, rows }, resolve, reject });
      this.pendingRows += rows.length;
      this.metrics.set('tandem_ingest_pending_rows', this.pendingRows);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.committing) return; // the running commit picks up what arrived meanwhile
    if (this.pendingRows >= this.groupRowsCap()) {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      void this.commitNext();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.commitNext();
      }, this.groupWaitMs);
    }
  }

  /** The row cap of the next group: what fits the target duration at the measured cost per row. */
  groupRowsCap(): number {
    if (this.commitMsTarget <= 0 || this.msPerRow === null || this.msPerRow <= 0) return this.groupRowsMax;
    const fitting = Math.floor(this.commitMsTarget / this.msPerRow);
    return Math.max(Math.min(ingestGroupRowsMin, this.groupRowsMax), Math.min(this.groupRowsMax, fitting));
  }

  /** Takes whole batches up to the row cap (a single larger batch goes alone). */
  private takeGroup(): Pending[] {
    const cap = this.groupRowsCap();
    let rows = 0;
    let count = 0;
    while (count < this.pending.length) {
      const size = this.pending[count]!.batch.rows.length;
      if (count > 0 && rows + size > cap) break;
      rows += size;
      count++;
    }
    const group = this.pending.slice(0, count);
    this.pending = this.pending.slice(count);
    this.pendingRows -= rows;
    return group;
  }

  private async commitNext(): Promise<void> {
    if (this.committing || this.pending.length === 0) return;
    this.committing = true;
    const group = this.takeGroup();
    this.metrics.set('tandem_ingest_pending_rows', this.pendingRows);
    const started = performance.now();
    const nowMs = this.now();
    try {
      const results = await this.repository.ingestBatches(
        group.map((p) => p.batch),
        nowMs,
      );
      const seconds = (performance.now() - started) / 1000;
      const rowCount = group.reduce((n, p) => n + p.batch.rows.length, 0);
      const sample = (seconds * 1000) / rowCount;
      // Smoothed, so one slow fsync does not halve the next group.
      this.msPerRow = this.msPerRow === null ? sample : this.msPerRow * 0.7 + sample * 0.3;
      this.metrics.increment('tandem_ingest_commits_total');
      this.metrics.increment('tandem_ingest_commit_seconds_total', seconds);
      if (seconds > this.metrics.get('tandem_ingest_commit_seconds_max')) this.metrics.set('tandem_ingest_commit_seconds_max', seconds);
      const committed: CommittedBatch[] = [];
      group.forEach((p, index) => {
        const result = results[index]!;
        this.metrics.increment('tandem_ingest_batches_total');
        this.metrics.increment('tandem_ingest_events_total', result.inserted);
        this.metrics.increment('tandem_ingest_duplicates_total', result.duplicates);
        if (result.inserted > 0) {
          const fresh = new Set(result.insertedSeqs);
          const rows = p.batch.rows.filter((row) => fresh.delete(row.seq));
          committed.push({ deviceId: p.batch.deviceId, epoch: p.batch.epoch, rows, committedAtMs: nowMs });
        }
        p.resolve({ outcome: 'committed', ...result });
      });
      if (committed.length > 0) this.options.onCommitted?.(committed);
    } catch (error) {
      // The transaction rolled back: nothing of this group is stored, so nothing is acknowledged.
      for (const p of group) p.reject(error as Error);
    } finally {
      this.committing = false;
    }
    if (this.pending.length > 0) {
      // Yield to the event loop between transactions so sockets are served during a backlog.
      setImmediate(() => {
        if (this.pendingRows >= this.groupRowsCap()) void this.commitNext();
        else this.schedule();
      });
    } else {
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  /** Resolves when everything received so far is committed. */
  flush(): Promise<void> {
    if (this.pending.length === 0 && !this.committing) return Promise.resolve();
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      void this.commitNext();
    }
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Commits what is pending, then refuses new work. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}
