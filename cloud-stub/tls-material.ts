// A local certificate authority and a server certificate for the mqtts listener, made with the
// `openssl` command (Node cannot create X.509 certificates). The CA certificate is what a device
// config pins (`caCert`); it is made once and kept, the server certificate is remade when the
// host names it must cover change.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { ensureDir, writePrivateFile } from './data-dir.ts';

export interface TlsMaterial {
  caCertPem: string;
  serverKeyPem: string;
  serverCertPem: string;
  caCertPath: string;
  /** Names and addresses the server certificate is valid for. */
  serverNames: string[];
}

/** An operating error: the machine cannot make certificates (no openssl). */
export class TlsMaterialError extends Error {}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new TlsMaterialError('TLS needs the `openssl` command to make a local CA; install OpenSSL or run without --tls.');
    }
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new TlsMaterialError(`openssl ${args[0]} failed: ${stderr.split('\n')[0] ?? String(error)}`);
  }
}

/** The names every local server certificate covers, plus the extra ones asked for. */
export function defaultServerNames(extra: string[] = []): string[] {
  const names = ['localhost', '127.0.0.1', '::1', hostname(), ...extra];
  return [...new Set(names.filter((name) => name.length > 0))].sort();
}

/**
 * Returns the CA and server certificate in `<dataDir>/tls`, making whatever is missing. RSA 2048
 * keys: every mbedTLS build (ESP32 Espruino included) verifies RSA, not every one has ECDSA.
 */
export function ensureTlsMaterial(dataDir: string, extraServerNames: string[] = []): TlsMaterial {
  const dir = join(dataDir, 'tls');
  ensureDir(dir);
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.pem');
  const serverKey = join(dir, 'server.key');
  const serverCert = join(dir, 'server.pem');
  const namesFile = join(dir, 'server-names.json');
  const serverNames = defaultServerNames(extraServerNames);

  if (!existsSync(caKey) || !existsSync(caCert)) {
    openssl(
      [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-sha256',
        '-subj', '/CN=Tandem local CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
    writePrivateFile(caKey, readFileSync(caKey, 'utf8'));
  }

  const previousNames = existsSync(namesFile) ? readFileSync(namesFile, 'utf8') : '';
  if (!existsSync(serverKey) || !existsSync(serverCert) || previousNames !== JSON.stringify(serverNames)) {
    const altNames = serverNames.map((name) => (isIP(name) !== 0 ? `IP:${name}` : `DNS:${name}`)).join(',');
    writeFileSync(
      join(dir, 'server.ext'),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${altNames}\n`,
    );
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
    openssl(
      ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '825', '-sha256', '-extfile', 'server.ext'],
      dir,
    );
    writePrivateFile(serverKey, readFileSync(serverKey, 'utf8'));
    writeFileSync(namesFile, JSON.stringify(serverNames));
  }

  return {
    caCertPem: readFileSync(caCert, 'utf8'),
    serverKeyPem: readFileSync(serverKey, 'utf8'),
    serverCertPem: readFileSync(serverCert, 'utf8'),
    caCertPath: caCert,
    serverNames,
  };
}
