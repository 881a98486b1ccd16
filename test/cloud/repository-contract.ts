// The repository contract (style practice 9): one suite, run against every implementation by the
// repository-*.test.ts files. Each test gets a fresh, empty repository from the factory.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventInput, Repository } from '../../cloud-stub/storage/repository.ts';

export interface RepositoryFactory {
  open(): Promise<Repository>;
  /** Removes what open() created (file, schema). */
  dispose(repository: Repository): Promise<void>;
}

const now = 1_700_000_000_000;

function rows(fromSeq: number, count: number, tsStart = now): EventInput[] {
  const out: EventInput[] = [];
  for (let i = 0; i < count; i++) {
    out.push({ seq: fromSeq + i, templateId: 'tpl-1', ts: tsStart + i * 10, fields: { temperature: 20 + i / 10, label: `e${fromSeq + i}` } });
  }
  return out;
}

export function repositoryContract(name: string, factory: RepositoryFactory): void {
  describe(`Repository contract: ${name}`, () => {
    let repo: Repository;

    beforeEach(async () => {
      repo = await factory.open();
      await repo.createDevice('dev-a', 'hash-a', now);
      await repo.createDevice('dev-b', 'hash-b', now);
    });

    afterEach(async () => {
      await factory.dispose(repo);
    });

    it('registers devices once and keeps the secret hash unless replaced', async () => {
      expect(await repo.createDevice('dev-a', 'other', now)).toBe(false);
      expect(await repo.getDeviceSecretHash('dev-a')).toBe('hash-a');
      expect(await repo.replaceDeviceSecret('dev-a', 'hash-a2')).toBe(true);
      expect(await repo.getDeviceSecretHash('dev-a')).toBe('hash-a2');
      expect(await repo.replaceDeviceSecret('nobody', 'x')).toBe(false);
      expect(await repo.getDeviceSecretHash('nobody')).toBeNull();
      const devices = await repo.listDevices();
      expect(devices.map((d) => d.deviceId)).toEqual(['dev-a', 'dev-b']);
      expect(devices[0]).toMatchObject({ createdAtMs: now, lastSeenAtMs: null, desiredVersion: 0, messageSeq: 0 });
      await repo.markDeviceSeen('dev-a', now + 5);
      expect((await repo.getDevice('dev-a'))?.lastSeenAtMs).toBe(now + 5);
      expect(await repo.getDevice('nobody')).toBeNull();
    });

    it('dedupes events on (device, epoch, seq) and reports new vs duplicate counts', async () => {
      const first = await repo.ingestEvents('dev-a', 1, rows(1, 50), now);
      expect(first).toEqual({ inserted: 50, duplicates: 0, insertedSeqs: rows(1, 50).map((r) => r.seq) });
      // A retransmitted frame overlapping the first: only the 10 new rows count.
      const second = await repo.ingestEvents('dev-a', 1, rows(41, 20), now);
      expect(second.inserted).toBe(10);
      expect(second.duplicates).toBe(10);
      expect(second.insertedSeqs).toEqual([51, 52, 53, 54, 55, 56, 57, 58, 59, 60]);
      // Same seqs under a new boot epoch, and for another device, are different events.
      expect((await repo.ingestEvents('dev-a', 2, rows(1, 5), now)).inserted).toBe(5);
      expect((await repo.ingestEvents('dev-b', 1, rows(1, 5), now)).inserted).toBe(5);
      expect(await repo.countEvents('dev-a')).toBe(65);
      expect(await repo.countEvents('dev-b')).toBe(5);
    });

    it('counts a seq repeated inside one batch once', async () => {
      const batch = [...rows(1, 3), ...rows(2, 1)];
      expect(await repo.ingestEvents('dev-a', 1, batch, now)).toEqual({ inserted: 3, duplicates: 1, insertedSeqs: [1, 2, 3] });
    });

    it('group-commits several devices in one call with one result per batch', async () => {
      await repo.ingestEvents('dev-a', 1, rows(1, 2), now);
      const results = await repo.ingestBatches(
        [
          { deviceId: 'dev-a', epoch: 1, rows: rows(1, 4) },
          { deviceId: 'dev-b', epoch: 7, rows: rows(100, 3) },
          { deviceId: 'dev-a', epoch: 1, rows: rows(4, 2) },
        ],
        now,
      );
      expect(results.map((r) => [r.inserted, r.duplicates])).toEqual([
        [2, 2],
        [3, 0],
        [1, 1],
      ]);
    });

    it('stores event fields as JSON and pages by (ts, id) within a time range', async () => {
      await repo.ingestEvents('dev-a', 1, rows(1, 25), now);
      const page1 = await repo.listEvents('dev-a', { limit: 10 });
      expect(page1).toHaveLength(10);
      expect(page1[0]).toMatchObject({ deviceId: 'dev-a', epoch: 1, seq: 1, templateId: 'tpl-1', ts: now, fields: { temperature: 20, label: 'e1' } });
      const last = page1[9]!;
      const page2 = await repo.listEvents('dev-a', { limit: 10, after: { ts: last.ts, id: last.id } });
      expect(page2.map((e) => e.seq)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
      const ranged = await repo.listEvents('dev-a', { limit: 100, fromTs: now + 50, toTs: now + 100 });
      expect(ranged.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
      expect(await repo.listEvents('dev-b', { limit: 10 })).toEqual([]);
    });

    it('accepts a desired patch only at the current version and versions every changed key', async () => {
      expect(await repo.patchDesired('dev-a', 0, { led: true, rate: 5 }, now)).toEqual({ outcome: 'applied', desiredVersion: 1 });
      expect(await repo.patchDesired('dev-a', 0, { led: false }, now)).toEqual({ outcome: 'conflict', desiredVersion: 1 });
      expect(await repo.patchDesired('dev-a', 1, { led: false }, now + 1)).toEqual({ outcome: 'applied', desiredVersion: 2 });
      expect(await repo.patchDesired('nobody', 0, { led: false }, now)).toEqual({ outcome: 'unknown-device' });
      const state = await repo.getState('dev-a');
      expect(state?.desiredVersion).toBe(2);
      expect(state?.entries).toEqual([
        { key: 'led', reportedValue: null, reportedVersion: null, reportedTs: null, desiredValue: false, desiredVersion: 2, desiredTs: now + 1 },
        { key: 'rate', reportedValue: null, reportedVersion: null, reportedTs: null, desiredValue: 5, desiredVersion: 1, desiredTs: now },
      ]);
      expect(await repo.getState('nobody')).toBeNull();
    });

    it('lets exactly one of two concurrent patches at the same version win', async () => {
      const outcomes = await Promise.all([repo.patchDesired('dev-a', 0, { a: 1 }, now), repo.patchDesired('dev-a', 0, { a: 2 }, now)]);
      expect(outcomes.map((o) => o.outcome).sort()).toEqual(['applied', 'conflict']);
    });

    it('never lets a stale reported value overwrite a newer one', async () => {
      expect(await repo.applyReported('dev-a', [{ key: 'temp', value: { c: 21 }, version: 5, ts: now }])).toEqual(['temp']);
      expect(await repo.applyReported('dev-a', [{ key: 'temp', value: { c: 19 }, version: 4, ts: now + 1 }])).toEqual([]);
      expect(await repo.applyReported('dev-a', [{ key: 'temp', value: { c: 19 }, version: 5, ts: now + 1 }])).toEqual([]);
      expect(
        await repo.applyReported('dev-a', [
          { key: 'temp', value: { c: 22 }, version: 6, ts: now + 2 },
          { key: 'mode', value: 'eco', version: 1, ts: now + 2 },
        ]),
      ).toEqual(['temp', 'mode']);
      const state = await repo.getState('dev-a');
      expect(state?.entries.find((e) => e.key === 'temp')).toMatchObject({ reportedValue: { c: 22 }, reportedVersion: 6, reportedTs: now + 2 });
      // Reported and desired halves of one key live side by side.
      await repo.patchDesired('dev-a', 0, { temp: { c: 18 } }, now);
      expect((await repo.getState('dev-a'))?.entries.find((e) => e.key === 'temp')).toMatchObject({
        reportedValue: { c: 22 },
        desiredValue: { c: 18 },
        desiredVersion: 1,
      });
    });

    it('queues cloud-to-device messages in order with a bound, delivers, acknowledges and expires them', async () => {
      expect(await repo.enqueueMessage('dev-a', { cmd: 'blink' }, 60, now, 3)).toEqual({ outcome: 'queued', seq: 1 });
      expect(await repo.enqueueMessage('dev-a', 'two', 1, now, 3)).toEqual({ outcome: 'queued', seq: 2 });
      expect(await repo.enqueueMessage('dev-a', [3], 60, now, 3)).toEqual({ outcome: 'queued', seq: 3 });
      expect(await repo.enqueueMessage('dev-a', 4, 60, now, 3)).toEqual({ outcome: 'queue-full' });
      expect(await repo.enqueueMessage('nobody', 4, 60, now, 3)).toEqual({ outcome: 'unknown-device' });
      expect((await repo.pendingMessages('dev-a', 0, now, 10)).map((m) => m.body)).toEqual([{ cmd: 'blink' }, 'two', [3]]);
      expect(await repo.queueDepths()).toMatchObject({ messagesQueued: 3 });

      await repo.markMessagesDelivered('dev-a', [1, 2]);
      expect((await repo.listMessages('dev-a')).map((m) => m.status)).toEqual(['delivered', 'delivered', 'queued']);
      expect(await repo.ackMessages('dev-a', 1)).toBe(1);
      // Message 2 had a 1 s time to live: it is reported as expired, not silently dropped.
      const expired = await repo.expireMessages(now + 1000);
      expect(expired.map((m) => [m.deviceId, m.seq, m.status])).toEqual([['dev-a', 2, 'expired']]);
      expect(await repo.expireMessages(now + 1000)).toEqual([]);
      expect((await repo.pendingMessages('dev-a', 0, now + 1000, 10)).map((m) => m.seq)).toEqual([3]);
      expect((await repo.listMessages('dev-a')).map((m) => [m.seq, m.status, m.expiresAtMs])).toEqual([
        [1, 'acked', now + 60_000],
        [2, 'expired', now + 1000],
        [3, 'queued', now + 60_000],
      ]);
      // The bound counts open messages only, so acknowledged and expired ones free their slots.
      expect(await repo.enqueueMessage('dev-a', 5, 60, now, 3)).toEqual({ outcome: 'queued', seq: 4 });
      expect(await repo.queueDepths()).toMatchObject({ messagesQueued: 2 });
      // Purging removes finished (acked, expired) history only, and only before the cut-off.
      expect(await repo.purgeMessages(now)).toBe(0);
      expect(await repo.purgeMessages(now + 1)).toBe(2);
      expect((await repo.listMessages('dev-a')).map((m) => [m.seq, m.status])).toEqual([
        [3, 'queued'],
        [4, 'queued'],
      ]);
      // Sequences keep counting after a purge: a device never sees a sequence reused.
      expect(await repo.enqueueMessage('dev-a', 6, 60, now, 3)).toEqual({ outcome: 'queued', seq: 5 });
    });

    it('runs an RPC request once per idempotency key', async () => {
      const request = { deviceId: 'dev-a', idempotencyKey: 'k1', route: 'weather', args: { city: 'Oslo' }, createdAtMs: now, expiresAtMs: now + 60_000 };
      const first = await repo.createRpcRequest(request);
      expect(first.created).toBe(true);
      expect(first.request).toMatchObject({ status: 'pending', args: { city: 'Oslo' }, result: null });
      const again = await repo.createRpcRequest({ ...request, args: { city: 'Bergen' } });
      expect(again.created).toBe(false);
      expect(again.request.args).toEqual({ city: 'Oslo' });
      // The same key from another device is another request.
      expect((await repo.createRpcRequest({ ...request, deviceId: 'dev-b' })).created).toBe(true);
      expect(await repo.queueDepths()).toMatchObject({ rpcPending: 2 });
      expect(await repo.completeRpcRequest('dev-a', 'k1', 'done', { temperature: 4 })).toBe(true);
      expect(await repo.getRpcRequest('dev-a', 'k1')).toMatchObject({ status: 'done', result: { temperature: 4 } });
      expect(await repo.completeRpcRequest('dev-a', 'nope', 'done', null)).toBe(false);
      expect(await repo.queueDepths()).toMatchObject({ rpcPending: 1 });
    });
  });
}
