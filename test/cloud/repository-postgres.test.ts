// Runs the repository contract against PostgreSQL on 127.0.0.1 (database `test`), in a schema
// unique to each test that is dropped afterwards.
import { randomBytes } from 'node:crypto';
import { dropPostgresSchema, PostgresRepository } from '../../cloud-stub/storage/postgres-repository.ts';
import { repositoryContract } from './repository-contract.ts';

const connectionString = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schemas = new Map<object, string>();

repositoryContract('PostgreSQL', {
  async open() {
    const schema = `tandem_test_${randomBytes(6).toString('hex')}`;
    const repo = await PostgresRepository.open({ connectionString, schema, poolSize: 4 });
    schemas.set(repo, schema);
    return repo;
  },
  async dispose(repo) {
    await repo.close();
    await dropPostgresSchema(connectionString, schemas.get(repo)!);
  },
});
