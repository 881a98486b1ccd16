// PostgreSQL destination: typed tables per template (the DDL `tandem schema --sql postgres`
// generates), an untyped table for events that fit no known template, and the state-change log.
// Every insert is ON CONFLICT DO NOTHING on (device, epoch, seq) or the change id, so a redelivered
// batch changes nothing: at-least-once delivery becomes exactly-once rows.
import pg from 'pg';
import type { Template } from '../../firmware/protocol/template.ts';
import type { StateChange, StoredEvent } from '../storage/repository.ts';
import { stateChangesTableName, typedRow, typedTables, typedTablesDdl, untypedTableName, type TypedTable, type TypedValue } from '../typed-tables.ts';
import { untilAborted, type Destination } from './destination.ts';

const quote = (name: string): string => `"${name}"`;

/** One INSERT of many rows: `VALUES ($1, $2), ($3, $4) ...`. */
function insertSql(table: string, columns: string[], rowCount: number, conflict: string): string {
  const groups: string[] = [];
  for (let row = 0; row < rowCount; row++) {
    groups.push(`(${columns.map((_, column) => `$${row * columns.length + column + 1}`).join(', ')})`);
  }
  return `INSERT INTO ${quote(table)} (${columns.map(quote).join(', ')}) VALUES ${groups.join(', ')} ON CONFLICT ${conflict} DO NOTHING`;
}

export class PostgresTypedDestination implements Destination {
  private readonly pool: pg.Pool;
  private readonly tables: Map<string, TypedTable>;
  private ready: Promise<void> | null = null;

  constructor(
    url: string,
    private readonly schema: string,
    private readonly templates: Template[],
  ) {
    this.pool = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${schema}` });
    this.pool.on('error', () => {});
    this.tables = typedTables(templates);
  }

  /** Creates the schema and tables on first use (and again after a failure, e.g. the database was down). */
  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      const onError = (): void => {};
      client.on('error', onError);
      try {
        await client.query("SELECT pg_advisory_lock(hashtext('tandem-typed-schema'))");
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await client.query(typedTablesDdl(this.templates, 'postgres'));
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('tandem-typed-schema'))").catch(() => {});
        client.off('error', onError);
        client.release();
      }
    })().catch((error: unknown) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  async deliverEvents(events: StoredEvent[], signal: AbortSignal): Promise<void> {
    await untilAborted(this.prepare(), signal);
    const typed = new Map<TypedTable, TypedValue[][]>();
    const untyped: TypedValue[][] = [];
    for (const event of events) {
      const table = this.tables.get(event.templateId);
      const row = table === undefined ? null : typedRow(table, event, 'postgres');
      if (table !== undefined && row !== null) {
        let rows = typed.get(table);
        if (rows === undefined) typed.set(table, (rows = []));
        rows.push(row);
      } else {
        untyped.push([event.deviceId, event.epoch, event.seq, event.templateId, event.ts, JSON.stringify(event.fields) ?? 'null']);
      }
    }
    await this.transaction(async (client) => {
      for (const [table, rows] of typed) {
        await client.query(insertSql(table.table, table.columns, rows.length, '("device_id", "boot_epoch", "seq")'), rows.flat());
      }
      if (untyped.length > 0) {
        await client.query(
          insertSql(untypedTableName, ['device_id', 'boot_epoch', 'seq', 'template_id', 'ts', 'fields'], untyped.length, '("device_id", "boot_epoch", "seq")'),
          untyped.flat(),
        );
      }
    }, signal);
  }

  async deliverStateChanges(changes: StateChange[], signal: AbortSignal): Promise<void> {
    await untilAborted(this.prepare(), signal);
    const values = changes.flatMap((c) => [c.id, c.deviceId, c.side, c.key, JSON.stringify(c.value) ?? 'null', c.version, c.ts]);
    await this.transaction(async (client) => {
      await client.query(insertSql(stateChangesTableName, ['id', 'device_id', 'side', 'key', 'value', 'version', 'ts'], changes.length, '("id")'), values);
    }, signal);
  }

  private async transaction(body: (client: pg.PoolClient) => Promise<void>, signal: AbortSignal): Promise<void> {
    const client = await untilAborted(this.pool.connect(), signal);
    // A connection lost while checked out emits 'error' on the client; unhandled, that would end
    // the process. The failing query rejects as well, which is the error the route reports.
    const onError = (): void => {};
    client.on('error', onError);
    let broken = false;
    try {
      await client.query('BEGIN');
      await untilAborted(body(client), signal);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
