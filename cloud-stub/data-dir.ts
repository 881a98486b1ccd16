// The cloud's data directory (default `.tandem/cloud`, or --data-dir / TANDEM_DATA_DIR): the SQLite
// file, the admin token, the service credential and the TLS material all live here.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateAdminToken, serviceUsername } from './identity.ts';
import { PostgresRepository } from './storage/postgres-repository.ts';
import type { Repository } from './storage/repository.ts';
import { SqliteRepository } from './storage/sqlite-repository.ts';

export const dataDirDefault = '.tandem/cloud';
export const devicesDirDefault = '.tandem/devices';

/** The flag wins over the environment, the environment over the default; relative to the cwd. */
export function resolveDataDir(flag?: string): string {
  return resolve(flag ?? process.env.TANDEM_DATA_DIR ?? dataDirDefault);
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes a file readable by its owner only (secrets). */
export function writePrivateFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The admin token for the HTTP API: read, or generated on first start (`created` says which). */
export function loadOrCreateAdminToken(dataDir: string): { token: string; created: boolean; path: string } {
  ensureDir(dataDir);
  const path = join(dataDir, 'admin-token');
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, created: false, path };
  }
  const token = generateAdminToken();
  writePrivateFile(path, token + '\n');
  return { token, created: true, path };
}

export interface ServiceCredential {
  username: string;
  secret: string;
}

/**
 * The credential cloud-internal MQTT connections use (another cloud-stub process subscribing to
 * this one's embedded broker). Stored in clear in a private file because the connecting process
 * needs the secret itself; the broker compares in constant time.
 */
export function loadOrCreateServiceCredential(dataDir: string): ServiceCredential {
  ensureDir(dataDir);
  const path = join(dataDir, 'service-credential.json');
  if (existsSync(path)) {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<ServiceCredential>;
    if (typeof parsed.secret === 'string' && parsed.secret.length >= 16) return { username: serviceUsername, secret: parsed.secret };
  }
  const credential = { username: serviceUsername, secret: generateAdminToken() };
  writePrivateFile(path, JSON.stringify(credential, null, 2) + '\n');
  return credential;
}

export interface StorageChoice {
  dataDir: string;
  /** PostgreSQL URL (DATABASE_URL); SQLite in the data directory when absent. */
  databaseUrl?: string;
  /** PostgreSQL schema (tests); default `public`. */
  databaseSchema?: string;
}

/** Opens the repository the options call for; a human-readable description comes with it. */
export async function openRepository(choice: StorageChoice): Promise<{ repository: Repository; description: string }> {
  if (choice.databaseUrl !== undefined && choice.databaseUrl !== '') {
    const repository = await PostgresRepository.open({ connectionString: choice.databaseUrl, schema: choice.databaseSchema });
    return { repository, description: `PostgreSQL ${redactUrl(choice.databaseUrl)}` };
  }
  ensureDir(choice.dataDir);
  const path = join(choice.dataDir, 'tandem.sqlite');
  return { repository: new SqliteRepository({ path }), description: `SQLite ${path}` };
}

/** A URL with its password replaced, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}
