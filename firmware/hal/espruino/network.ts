// The HAL Network over Espruino's `net` and `tls` modules. Both platform behaviours of a failed
// connect (Linux builds throw synchronously, ESP32 emits 'error' then 'close') become one
// onClose(true), so core code sees a single failure path.
// TLS on Espruino 2v29 (checked on the Linux build): the server is never verified, even with a
// `ca` (mbedtls runs with VERIFY_NONE); `ca` must be DER bytes, so the PEM is converted here;
// only RSA server certificates work; the server's orderly close arrives as an error.
import type { Network, Socket, SocketHandlers } from '../socket.ts';

/** One connection. Listeners are registered once per connection, never per event. */
class EspruinoSocket implements Socket {
  private declare handlers: SocketHandlers;
  private declare socket: EspruinoNetSocket | null;
  private declare closed: boolean;
  private declare hadError: boolean;

  constructor(handlers: SocketHandlers) {
    this.handlers = handlers;
    this.socket = null;
    this.closed = false;
    this.hadError = false;
  }

  open(module: EspruinoNet, options: EspruinoConnectOptions): void {
    const self = this;
    let socket: EspruinoNetSocket;
    try {
      socket = module.connect(options, function () {
        if (!self.closed) self.handlers.onConnect();
      });
    } catch (error) {
      // Linux builds refuse synchronously. Report it after connect() has returned, as on ESP32,
      // so the caller always holds its Socket before any callback runs.
      this.hadError = true;
      setTimeout(function () {
        self.finish();
      }, 0);
      return;
    }
    this.socket = socket;
    socket.on('data', function (data: string) {
      if (!self.closed) self.handlers.onData(data);
    });
    socket.on('error', function () {
      self.hadError = true;
    });
    socket.on('close', function (hadError?: boolean) {
      if (hadError === true) self.hadError = true;
      self.finish();
    });
  }

  write(data: Uint8Array, offset: number, length: number): boolean {
    if (this.closed || this.socket === null) return false;
    // Espruino sockets send a Uint8Array as decimal text, so hand over a byte string.
    this.socket.write(E.toString(data.subarray(offset, offset + length)));
    return true;
  }

  close(): void {
    if (this.closed || this.socket === null) return;
    this.socket.end();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket = null;
    this.handlers.onClose(this.hadError);
  }
}

/** The DER bytes of a PEM certificate (its base64 body, decoded), as mbedtls on Espruino takes them. */
export function pemToDer(pem: string): string {
  const begin = pem.indexOf('-----BEGIN');
  if (begin < 0) return pem;
  const bodyStart = pem.indexOf('\n', begin) + 1;
  const bodyEnd = pem.indexOf('-----END', bodyStart);
  if (bodyStart === 0 || bodyEnd < 0) return pem;
  return atob(pem.slice(bodyStart, bodyEnd).split('\n').join('').split('\r').join('').split(' ').join(''));
}

export class EspruinoNetwork implements Network {
  private declare caDer: string | undefined;

  /**
   * `caCert` (PEM) is passed to TLS connections as Espruino's `ca`. Espruino 2v29 does not check
   * the server against it; it is kept so that a firmware that verifies gets it for free.
   */
  constructor(caCert: string | undefined) {
    this.caDer = caCert === undefined ? undefined : pemToDer(caCert);
  }

  connect(host: string, port: number, secure: boolean, handlers: SocketHandlers): Socket {
    const socket = new EspruinoSocket(handlers);
    const options: EspruinoConnectOptions = { host: host, port: port };
    if (secure && this.caDer !== undefined) options.ca = this.caDer;
    socket.open(secure ? require('tls') : require('net'), options);
    return socket;
  }
}
