// Device and service credentials: secret generation, salted scrypt hashes, verification with a
// small cache so reconnect storms do not each pay for scrypt, and the admin token check.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost (N). Secrets are 256 random bits, so the hash only has to make a leaked table
 * useless, not slow down guessing of a human password; 2^12 keeps a connect around 9 ms of CPU. */
export const secretHashCostDefault = 4096;
const blockSize = 8;
const parallelization = 1;
const keyBytes = 32;

/**
 * A new device or service secret: 16 random bytes (128 bits), base64url (22 characters, no
 * padding). Every CONNECT carries it, and on a cellular link every byte is paid for.
 */
export function generateSecret(): string {
  return randomBytes(16).toString('base64url');
}

/** An operator credential (admin token): 32 random bytes, base64url (43 characters). */
export function generateAdminToken(): string {
  return randomBytes(32).toString('base64url');
}

function scryptAsync(secret: string, salt: Buffer, cost: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, keyBytes, { N: cost, r, p, maxmem: 256 * cost * r + 1024 * 1024 }, (error, key) => {
      if (error) reject(error);
      else resolve(key);
    });
  });
}

/** `scrypt$N$r$p$salt$hash` (salt and hash base64url), so the cost can be raised later per device. */
export async function hashSecret(secret: string, cost = secretHashCostDefault): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, cost, blockSize, parallelization);
  return ['scrypt', cost, blockSize, parallelization, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** True when `secret` matches the stored hash; a malformed stored hash never matches. */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const cost = Number(parts[1]);
  const r = Number(parts[2]);
  const p = Number(parts[3]);
  if (!Number.isInteger(cost) || !Number.isInteger(r) || !Number.isInteger(p) || cost < 2 || cost > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length !== keyBytes) return false;
  const key = await scryptAsync(secret, salt, cost, r, p);
  return timingSafeEqual(key, expected);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison of two strings of any length (compares their SHA-256 digests). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** Looks up the stored hash of a device; the repository does this in production. */
export type SecretHashLookup = (deviceId: string) => Promise<string | null>;

export type VerifyOutcome = 'ok' | 'unknown-device' | 'bad-secret';

/**
 * Verifies device credentials. A successful check is remembered as (stored hash, SHA-256 of the
 * secret), so a reconnect with the same secret costs one lookup and one hash; rotating the secret
 * changes the stored hash and so invalidates the entry. Bounded: the oldest entry goes first.
 */
export class CredentialVerifier {
  private readonly verified = new Map<string, { storedHash: string; secretDigest: Buffer }>();

  constructor(
    private readonly lookup: SecretHashLookup,
    private readonly cacheEntriesMax = 100_000,
  ) {}

  async verify(deviceId: string, secret: string): Promise<VerifyOutcome> {
    const storedHash = await this.lookup(deviceId);
    if (storedHash === null) return 'unknown-device';
    const cached = this.verified.get(deviceId);
    const secretDigest = digest(secret);
    if (cached !== undefined && cached.storedHash === storedHash && timingSafeEqual(cached.secretDigest, secretDigest)) return 'ok';
    if (!(await verifySecret(secret, storedHash))) return 'bad-secret';
    this.verified.delete(deviceId);
    if (this.verified.size >= this.cacheEntriesMax) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(deviceId, { storedHash, secretDigest });
    return 'ok';
  }
}

/** The MQTT username of cloud-internal connections. `$` is never part of a device id. */
export const serviceUsername = '$cloud';
/** Client ids of cloud-internal connections start with this, so they can never take over a device's session. */
export const serviceClientIdPrefix = '$cloud-';

/** Parses `Authorization: Bearer TOKEN`; null when absent or of another scheme. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match === null ? null : match[1]!;
}
