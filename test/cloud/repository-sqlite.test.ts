// Runs the repository contract against the SQLite implementation on a real file (WAL).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteRepository } from '../../cloud-stub/storage/sqlite-repository.ts';
import { repositoryContract } from './repository-contract.ts';

const dirs = new Map<object, string>();

repositoryContract('SQLite file', {
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'tandem-sqlite-'));
    const repo = new SqliteRepository({ path: join(dir, 'tandem.sqlite') });
    dirs.set(repo, dir);
    return repo;
  },
  async dispose(repo) {
    await repo.close();
    rmSync(dirs.get(repo)!, { recursive: true, force: true });
  },
});
