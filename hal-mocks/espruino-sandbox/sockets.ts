// Espruino's `net` and `tls` modules for the sandbox, over real TCP (node:net, node:tls).
// Fault model: what the host network does (refusals, resets, slow peers) reaches the firmware the
// way an ESP32 reports it: an 'error' event ({ code, message }) and then 'close'. Received data
// arrives as byte strings in chunks of at most 536 bytes, each chunk its own 'data' callback.
// Writes follow Espruino: a string is sent as bytes (char codes 0..255); anything else is sent as
// its text, so a Uint8Array [9,8,250] goes out as "9,8,250". The network can be taken down
// (`SocketRegistry.setOnline(false)`): open sockets fail with 'error' then 'close', and new
// connects fail the same way, as when a board loses its WiFi. Bytes each way are counted.
// TLS as Espruino 2v29 does it (checked against the Linux build): the server is never verified,
// `ca` must be DER bytes (a PEM string throws), TLS 1.2 with RSA certificates only, a failed
// handshake is an uncaught InternalError and a plain close, and the peer's orderly close comes
// as an 'error' (code -30848) before 'close'.
// Not modelled: the board's small socket buffers and their back-pressure, DNS failures beyond
// what the host reports.
import { connect as netConnect, isIP, type Socket as NodeSocket } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';

/** MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY, the code Espruino's 'error' event carries when a TLS peer closes. */
const tlsPeerCloseNotify = -0x7880;

/** The largest chunk Espruino hands to a socket's 'data' listener on an ESP32 (one TCP MSS). */
export const socketChunkBytesMax = 536;

/** What a device socket needs from the sandbox it lives in. */
export interface SocketHost {
  /** Runs a device callback as the interpreter's idle loop would; nothing runs once halted. */
  run(callback: unknown, args: unknown[]): void;
  /** False once the device has lost power: nothing it sends after that leaves. */
  isPowered(): boolean;
  newError(message: string): Error;
  newInternalError(message: string): Error;
  newObject(fields: Record<string, unknown>): object;
  /** Prints "Uncaught ..." as the interpreter does for an error no code can catch. */
  reportUncaught(error: unknown): void;
}

type Listener = (...args: unknown[]) => void;

/** The socket object the firmware holds. */
export class DeviceSocket {
  private readonly listeners = new Map<string, unknown[]>();
  private readonly host: SocketHost;
  private socket: NodeSocket | undefined;
  private closed = false;
  private hadError = false;
  private readonly registry: SocketRegistry;

  constructor(host: SocketHost, registry: SocketRegistry) {
    this.host = host;
    this.registry = registry;
  }

  on(event: unknown, listener: unknown): void {
    const name = String(event);
    const list = this.listeners.get(name) ?? [];
    list.push(listener);
    this.listeners.set(name, list);
  }

  removeAllListeners(event?: unknown): void {
    if (event === undefined) this.listeners.clear();
    else this.listeners.delete(String(event));
  }

  /** Sends a string as bytes; anything else as its text, as Espruino does. */
  write(data: unknown): boolean {
    if (this.closed || this.socket === undefined || !this.host.isPowered()) return false;
    const text = typeof data === 'string' ? data : String(data);
    this.socket.write(Buffer.from(text, 'latin1'));
    this.registry.bytesSent += text.length;
    return true;
  }

  end(data?: unknown): void {
    if (data !== undefined) this.write(data);
    if (this.closed || this.socket === undefined) return;
    const socket = this.socket;
    // Espruino closes the connection outright; Node would wait for the peer's FIN.
    socket.end(() => socket.destroy());
  }

  /** @internal */
  attach(socket: NodeSocket, onConnect: unknown, secure: boolean): void {
    this.socket = socket;
    let handshakeDone = !secure;
    let tcpConnected = false;
    let handshakeFailed = false;
    // Espruino calls back at the TCP connect, before any TLS handshake.
    socket.on('connect', () => {
      tcpConnected = true;
      if (typeof onConnect === 'function') this.host.run(onConnect, []);
      this.emit('connect', []);
    });
    socket.on('secureConnect', () => {
      handshakeDone = true;
    });
    socket.on('data', (data: Buffer) => {
      this.registry.bytesReceived += data.length;
      for (let offset = 0; offset < data.length && !this.closed; offset += socketChunkBytesMax) {
        const chunk = data.subarray(offset, Math.min(offset + socketChunkBytesMax, data.length)).toString('latin1');
        this.emit('data', [chunk]);
      }
    });
    socket.on('end', () => {
      // mbedtls reports the peer's orderly TLS close as an error (MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY).
      if (secure && handshakeDone) {
        this.hadError = true;
        this.emit('error', [this.host.newObject({ code: tlsPeerCloseNotify, message: 'unknown error' })]);
      }
      this.emit('end', []);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (secure && tcpConnected && !handshakeDone) {
        // A failed handshake is not an 'error' event on Espruino: the socket closes as if nothing
        // went wrong, then the interpreter reports an uncaught InternalError.
        handshakeFailed = true;
        return;
      }
      this.hadError = true;
      this.emit('error', [this.host.newObject({ code: -1, message: error.code ?? error.message })]);
    });
    socket.on('close', () => {
      this.finish();
      if (handshakeFailed) this.host.reportUncaught(this.host.newInternalError('mbedtls_ssl_handshake returned -0x7780'));
    });
  }

  /** @internal The link is gone: the firmware sees 'error' then 'close', as on a board. */
  fail(message: string): void {
    if (this.closed) return;
    this.socket?.destroy();
    this.socket = undefined;
    this.hadError = true;
    this.emit('error', [this.host.newObject({ code: -1, message })]);
    this.finish();
  }

  /** @internal Drops the connection without telling the firmware (power off, sandbox stop). */
  destroySilently(): void {
    this.closed = true;
    this.socket?.destroy();
    this.socket = undefined;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket = undefined;
    this.registry.remove(this);
    this.emit('close', [this.hadError]);
  }

  private emit(event: string, args: unknown[]): void {
    const list = this.listeners.get(event);
    if (list === undefined) return;
    for (const listener of list.slice()) this.host.run(listener as Listener, args);
  }
}

/** Parses Espruino's connect options: { host, port, ca } or "host:port". */
function connectTarget(options: unknown): { host: string; port: number; ca?: string } {
  if (typeof options === 'string') {
    const colon = options.lastIndexOf(':');
    return { host: options.slice(0, colon), port: Number(options.slice(colon + 1)) };
  }
  const record = (options ?? {}) as Record<string, unknown>;
  const target: { host: string; port: number; ca?: string } = { host: String(record.host ?? 'localhost'), port: Number(record.port ?? 80) };
  if (typeof record.ca === 'string') target.ca = record.ca;
  return target;
}

function isDerCertificate(bytes: string): boolean {
  try {
    new X509Certificate(Buffer.from(bytes, 'latin1'));
    return !bytes.includes('-----BEGIN');
  } catch {
    return false;
  }
}

/** The open sockets of one sandbox, so stop() can drop them all. */
export class SocketRegistry {
  private readonly open = new Set<DeviceSocket>();
  /** Bytes the device sent and received, over all its connections. */
  bytesSent = 0;
  bytesReceived = 0;
  private isOnline = true;

  get online(): boolean {
    return this.isOnline;
  }

  /** Takes the network down (every open socket fails) or brings it back. */
  setOnline(online: boolean): void {
    this.isOnline = online;
    if (!online) for (const socket of [...this.open]) socket.fail('network down');
  }

  add(socket: DeviceSocket): void {
    this.open.add(socket);
  }

  remove(socket: DeviceSocket): void {
    this.open.delete(socket);
  }

  get size(): number {
    return this.open.size;
  }

  destroyAll(): void {
    for (const socket of this.open) socket.destroySilently();
    this.open.clear();
  }
}

/** `require("net")` or `require("tls")` for one sandbox. */
export function createNetModule(host: SocketHost, registry: SocketRegistry, secure: boolean): { connect(options: unknown, onConnect?: unknown): DeviceSocket } {
  return {
    connect(options: unknown, onConnect?: unknown): DeviceSocket {
      const target = connectTarget(options);
      if (!(target.port >= 1 && target.port <= 65535)) throw host.newError(`Invalid port ${String(target.port)}`);
      if (secure && target.ca !== undefined && !isDerCertificate(target.ca)) {
        // Espruino hands `ca` to mbedtls as it is: it takes DER bytes (atob of the PEM body), and
        // a PEM string fails to parse.
        throw host.newInternalError("HTTPS init failed! mbedtls_x509_crt_parse of 'ca': Invalid format");
      }
      const socket = new DeviceSocket(host, registry);
      registry.add(socket);
      if (!registry.online) {
        // As on a board without its WiFi: the attempt fails after connect() has returned.
        setImmediate(() => socket.fail('network down'));
        return socket;
      }
      const nodeSocket = secure
        ? tlsConnect({
            host: target.host,
            port: target.port,
            // Espruino 2v29 never verifies the server (MBEDTLS_SSL_VERIFY_NONE), ca or not, and its
            // mbedtls offers TLS 1.2 with RSA-authenticated suites only.
            rejectUnauthorized: false,
            maxVersion: 'TLSv1.2',
            ciphers: 'aRSA',
            ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
          })
        : netConnect({ host: target.host, port: target.port });
      nodeSocket.setNoDelay(true);
      socket.attach(nodeSocket, onConnect, secure);
      return socket;
    },
  };
}
