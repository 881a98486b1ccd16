// The pure rules: topic ACLs for devices and the cloud service, secret hashing and the verified-
// credential cache (rotation invalidates it), and the admin token parsing.
import { describe, expect, it } from 'vitest';
import { mayPublish, maySubscribe, type Identity } from '../../cloud-stub/acl.ts';
import { bearerToken, CredentialVerifier, hashSecret, secretsEqual, verifySecret } from '../../cloud-stub/identity.ts';
import { parseUplinkTopic } from '../../cloud-stub/transport.ts';

const device: Identity = { kind: 'device', deviceId: 'dev-a' };
const service: Identity = { kind: 'service' };

describe('ACL [CLOUD-5] [CLOUD-6]', () => {
  it('lets a device publish only to its own uplink and presence topics', () => {
    expect(mayPublish(device, 't/dev-a/u')).toBe(true);
    expect(mayPublish(device, 't/dev-a/p')).toBe(true);
    for (const topic of ['t/dev-a/d', 't/dev-b/u', 't/dev-b/p', 't/dev-a/u/x', 't/dev-a', 't/+/u', '$SYS/x', 'T/dev-a/u', 't/dev-a/u ']) {
      expect(mayPublish(device, topic), topic).toBe(false);
    }
  });

  it('lets a device subscribe only to its own downlink, with no wildcards', () => {
    expect(maySubscribe(device, 't/dev-a/d')).toBe(true);
    for (const filter of ['t/dev-b/d', 't/+/d', 't/#', '#', 't/dev-a/+', 't/dev-a/u', '$share/g/t/dev-a/d']) {
      expect(maySubscribe(device, filter), filter).toBe(false);
    }
  });

  it('lets the service read every uplink and presence (shared or not) and write any downlink', () => {
    for (const filter of ['t/+/u', 't/+/p', '$share/tandem/t/+/u', '$share/g_2/t/+/p']) expect(maySubscribe(service, filter), filter).toBe(true);
    for (const filter of ['#', 't/#', 't/+/d', '$share//t/+/u', '$share/tandem/#']) expect(maySubscribe(service, filter), filter).toBe(false);
    expect(mayPublish(service, 't/dev-a/d')).toBe(true);
    for (const topic of ['t/dev-a/u', 't/bad id/d', 't//d', 'x/dev-a/d']) expect(mayPublish(service, topic), topic).toBe(false);
  });

  it('parses only well-formed uplink and presence topics', () => {
    expect(parseUplinkTopic('t/dev-a/u')).toEqual({ deviceId: 'dev-a', channel: 'uplink' });
    expect(parseUplinkTopic('t/dev-a/p')).toEqual({ deviceId: 'dev-a', channel: 'presence' });
    for (const topic of ['t/dev-a/d', 't//u', 't/dev-a/u/x', 'x/dev-a/u']) expect(parseUplinkTopic(topic), topic).toBeNull();
  });
});

describe('credentials [CLOUD-4]', () => {
  it('hashes with a salt and cost in the hash, and never matches a malformed stored hash', async () => {
    const hash = await hashSecret('s3cret', 1024);
    expect(hash).toMatch(/^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(await verifySecret('s3cret', hash)).toBe(true);
    expect(await verifySecret('s3cret!', hash)).toBe(false);
    for (const bad of ['', 'plain', 'scrypt$1024$8$1$abc', 'bcrypt$1$2$3$4$5', hash.replace('scrypt$1024', 'scrypt$999999999')]) {
      expect(await verifySecret('s3cret', bad), bad).toBe(false);
    }
  });

  it('caches a verified secret but re-checks after rotation and never caches a failure', async () => {
    const stored = new Map<string, string>([['dev-a', await hashSecret('one', 1024)]]);
    let lookups = 0;
    const verifier = new CredentialVerifier(async (id) => {
      lookups++;
      return stored.get(id) ?? null;
    });
    expect(await verifier.verify('dev-a', 'one')).toBe('ok');
    expect(await verifier.verify('dev-a', 'one')).toBe('ok');
    expect(await verifier.verify('dev-a', 'two')).toBe('bad-secret');
    expect(await verifier.verify('ghost', 'one')).toBe('unknown-device');
    stored.set('dev-a', await hashSecret('two', 1024));
    expect(await verifier.verify('dev-a', 'one')).toBe('bad-secret');
    expect(await verifier.verify('dev-a', 'two')).toBe('ok');
    // Every check reads the stored hash, so a rotated or removed device is seen at once.
    expect(lookups).toBe(6);
    stored.delete('dev-a');
    expect(await verifier.verify('dev-a', 'two')).toBe('unknown-device');
  });

  it('bounds the cache', async () => {
    const hash = await hashSecret('x', 1024);
    const verifier = new CredentialVerifier(async () => hash, 2);
    for (const id of ['a', 'b', 'c']) expect(await verifier.verify(id, 'x')).toBe('ok');
    expect((verifier as unknown as { verified: Map<string, unknown> }).verified.size).toBe(2);
  });

  it('reads bearer tokens and compares secrets of any length', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer   tok ')).toBe('tok');
    expect(bearerToken('Basic abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
    expect(bearerToken('Bearer a b')).toBeNull();
    expect(secretsEqual('abc', 'abc')).toBe(true);
    expect(secretsEqual('abc', 'abcd')).toBe(false);
  });
});
