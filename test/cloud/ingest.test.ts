// Group-commit ingest on a real SQLite file: concurrent calls share transactions, every promise
// resolves only after its commit, a group is capped in rows, overload and failure are reported,
// and only new rows reach listeners.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IngestQueue, type CommittedBatch } from '../../cloud-stub/ingest.ts';
import { createCloudMetrics } from '../../cloud-stub/metrics.ts';
import type { EventInput, IngestBatch, IngestResult, Repository } from '../../cloud-stub/storage/repository.ts';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import { temporaryDir } from './helpers.ts';

function rows(fromSeq: number, count: number): EventInput[] {
  return Array.from({ length: count }, (_, i) => ({ seq: fromSeq + i, templateId: '1', ts: 1_700_000_000_000 + fromSeq + i, fields: { v: i } }));
}

/** Wraps the repository to record each transaction and when it finished. */
function recording(repository: Repository): { repository: Repository; transactions: Array<{ batches: number; rows: number; doneAt: number }> } {
  const transactions: Array<{ batches: number; rows: number; doneAt: number }> = [];
  const wrapped = Object.create(repository) as Repository;
  wrapped.ingestBatches = async (batches: IngestBatch[], nowMs: number): Promise<IngestResult[]> => {
    const results = await repository.ingestBatches(batches, nowMs);
    transactions.push({ batches: batches.length, rows: batches.reduce((n, b) => n + b.rows.length, 0), doneAt: performance.now() });
    return results;
  };
  return { repository: wrapped, transactions };
}

describe('IngestQueue (group commit)', () => {
  let temp: ReturnType<typeof temporaryDir>;
  let sqlite: SqliteRepository;

  beforeEach(async () => {
    temp = temporaryDir('tandem-ingest-');
    sqlite = new SqliteRepository({ path: join(temp.dir, 'tandem.sqlite') });
    for (let d = 0; d < 40; d++) await sqlite.createDevice(`dev-${d}`, 'h', 0);
  });

  afterEach(async () => {
    await sqlite.close();
    temp.remove();
  });

  it('commits concurrent calls from 40 devices in a few shared transactions and resolves each after its commit', async () => {
    const { repository, transactions } = recording(sqlite);
    const metrics = createCloudMetrics();
    const queue = new IngestQueue(repository, metrics, { groupWaitMs: 5 });
    const resolvedAt: number[] = [];
    const calls = Array.from({ length: 40 }, (_, d) =>
      queue.ingest(`dev-${d}`, 1, rows(1, 50)).then((outcome) => {
        resolvedAt.push(performance.now());
        return outcome;
      }),
    );
    const outcomes = await Promise.all(calls);
    for (const outcome of outcomes) expect(outcome).toMatchObject({ outcome: 'committed', inserted: 50, duplicates: 0 });
    expect(transactions.length).toBeLessThanOrEqual(2);
    expect(transactions.reduce((n, t) => n + t.rows, 0)).toBe(2000);
    // Acknowledge after commit: no promise resolved before the last transaction finished.
    expect(Math.min(...resolvedAt)).toBeGreaterThanOrEqual(transactions[0]!.doneAt);
    expect(metrics.get('tandem_ingest_events_total')).toBe(2000);
    expect(metrics.get('tandem_ingest_batches_total')).toBe(40);
    expect(await sqlite.countEvents('dev-7')).toBe(50);
  });

  it('caps a group at groupRowsMax rows (whole batches) so one transaction stays short', async () => {
    const { repository, transactions } = recording(sqlite);
    const queue = new IngestQueue(repository, createCloudMetrics(), { groupRowsMax: 500, groupWaitMs: 5 });
    await Promise.all(Array.from({ length: 40 }, (_, d) => queue.ingest(`dev-${d}`, 1, rows(1, 50))));
    expect(transactions.length).toBeGreaterThanOrEqual(4);
    for (const t of transactions) expect(t.rows).toBeLessThanOrEqual(500);
    // A single batch larger than the cap still goes through, alone.
    const big = await queue.ingest('dev-0', 2, rows(1, 800));
    expect(big).toMatchObject({ outcome: 'committed', inserted: 800 });
    expect(transactions[transactions.length - 1]!.batches).toBe(1);
  });

  it('shrinks the row cap to what fits the commit-time target, measured per row', async () => {
    const { repository, transactions } = recording(sqlite);
    // A disk that costs 0.1 ms per row, spent synchronously like SQLite does.
    const slow = Object.create(repository) as Repository;
    slow.ingestBatches = async (batches, nowMs) => {
      const rowCount = batches.reduce((n, b) => n + b.rows.length, 0);
      const until = performance.now() + rowCount * 0.1;
      while (performance.now() < until);
      return repository.ingestBatches(batches, nowMs);
    };
    const queue = new IngestQueue(slow, createCloudMetrics(), { commitMsTarget: 20, groupWaitMs: 5 });
    expect(queue.groupRowsCap()).toBe(4096);
    await queue.ingest('dev-0', 1, rows(1, 1000));
    // About 0.1 ms per row measured: 20 ms fits about 200 rows (more if the real insert was fast).
    expect(queue.groupRowsCap()).toBeGreaterThanOrEqual(64);
    expect(queue.groupRowsCap()).toBeLessThanOrEqual(200);
    await Promise.all(Array.from({ length: 40 }, (_, d) => queue.ingest(`dev-${d}`, 2, rows(1, 50))));
    const later = transactions.slice(1);
    expect(later.length).toBeGreaterThanOrEqual(10);
    for (const t of later) expect(t.rows).toBeLessThanOrEqual(200);
  });

  it('reports duplicates and hands only new rows to listeners', async () => {
    const committed: CommittedBatch[] = [];
    const metrics = createCloudMetrics();
    const queue = new IngestQueue(sqlite, metrics, { onCommitted: (batches) => committed.push(...batches) });
    await queue.ingest('dev-1', 1, rows(1, 10));
    const replay = await queue.ingest('dev-1', 1, rows(6, 10));
    expect(replay).toMatchObject({ outcome: 'committed', inserted: 5, duplicates: 5, insertedSeqs: [11, 12, 13, 14, 15] });
    const replayRows = committed.filter((b) => b.rows.some((r) => r.seq > 10)).flatMap((b) => b.rows.map((r) => r.seq));
    expect(replayRows).toEqual([11, 12, 13, 14, 15]);
    const full = await queue.ingest('dev-1', 1, rows(1, 15));
    expect(full).toMatchObject({ inserted: 0, duplicates: 15 });
    expect(metrics.get('tandem_ingest_duplicates_total')).toBe(20);
  });

  it('refuses work beyond pendingRowsMax as overloaded instead of queueing without end', async () => {
    const metrics = createCloudMetrics();
    const queue = new IngestQueue(sqlite, metrics, { pendingRowsMax: 100, groupWaitMs: 20 });
    const first = queue.ingest('dev-1', 1, rows(1, 80));
    expect(await queue.ingest('dev-2', 1, rows(1, 30))).toEqual({ outcome: 'overloaded' });
    expect(await first).toMatchObject({ outcome: 'committed', inserted: 80 });
    expect(metrics.get('tandem_ingest_overloaded_total')).toBe(1);
    expect(await queue.ingest('dev-2', 1, rows(1, 30))).toMatchObject({ outcome: 'committed' });
  });

  it('rejects every call of a failed transaction (nothing acknowledged) and keeps working after', async () => {
    let fail = true;
    const flaky = Object.create(sqlite) as Repository;
    flaky.ingestBatches = async (batches, nowMs) => {
      if (fail) throw new Error('disk I/O error');
      return sqlite.ingestBatches(batches, nowMs);
    };
    const queue = new IngestQueue(flaky, createCloudMetrics());
    const results = await Promise.allSettled([queue.ingest('dev-1', 1, rows(1, 5)), queue.ingest('dev-2', 1, rows(1, 5))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await sqlite.countEvents('dev-1')).toBe(0);
    fail = false;
    expect(await queue.ingest('dev-1', 1, rows(1, 5))).toMatchObject({ outcome: 'committed', inserted: 5 });
  });

  it('flushes pending work on close and refuses new work after', async () => {
    const queue = new IngestQueue(sqlite, createCloudMetrics(), { groupWaitMs: 50 });
    const pending = queue.ingest('dev-3', 1, rows(1, 3));
    await queue.close();
    expect(await pending).toMatchObject({ inserted: 3 });
    await expect(queue.ingest('dev-3', 1, rows(4, 1))).rejects.toThrow(/closed/);
  });
});
