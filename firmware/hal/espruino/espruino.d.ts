// Declarations for the Espruino APIs the firmware uses that @types/espruino lacks or types too
// loosely: the console and timers, require() of the built-in modules, Storage, net/tls sockets and
// a few E.* and process helpers. Facts from ../../../../shared/espruino/PROFILE.md; keep to what
// Espruino 2v2x really offers (no Node types here).

interface EspruinoConsole {
  log(...values: unknown[]): void;
}
declare var console: EspruinoConsole;

/** Returns a timer id (a whole number from 1). Extra arguments are passed to the callback. */
declare function setTimeout(callback: (...args: unknown[]) => void, delayMs?: number, ...args: unknown[]): number;
declare function setInterval(callback: (...args: unknown[]) => void, periodMs?: number, ...args: unknown[]): number;

/** Linux builds only: ends the interpreter (there is no process.exit). */
declare function quit(): void;

/** A file of the Storage module written with Storage.open(): appends in 4064-byte chunks. */
interface EspruinoStorageFile {
  /** Up to `length` bytes as a byte string, or undefined at the end of the file. */
  read(length: number): string | undefined;
  /** The next line including its "\n", or undefined at the end of the file. */
  readLine(): string | undefined;
  getLength(): number;
  /** Appends. Never write the byte 0xFF: it marks the end of a StorageFile. */
  write(data: string): void;
  erase(): void;
}

/** `require("Storage")`: files in a flash area with NOR semantics (see PROFILE.md, Storage). */
interface EspruinoStorage {
  /** The file as a byte string (memory-mapped on ESP32), or undefined when it does not exist. */
  read(name: string, offset?: number, length?: number): string | undefined;
  readJSON(name: string, noExceptions?: boolean): unknown;
  readArrayBuffer(name: string): ArrayBuffer | undefined;
  /**
   * Writes `data` at `offset`. At offset 0 a new copy of the file is made (`size` preallocates);
   * at other offsets every target byte must still be 0xFF, else it throws
   * "File already written with different data".
   */
  write(name: string, data: string | Uint8Array | number[], offset?: number, size?: number): boolean;
  writeJSON(name: string, data: unknown): boolean;
  erase(name: string): void;
  list(pattern?: RegExp | string, filter?: { sf?: boolean }): string[];
  compact(): void;
  getFree(): number;
  getStats(): { totalBytes: number; freeBytes: number; fileBytes: number; fileCount: number; trashBytes: number; trashCount: number };
  eraseAll(): void;
  open(name: string, mode: 'r' | 'w' | 'a'): EspruinoStorageFile;
}

/** An error object as Espruino's sockets report it. */
interface EspruinoSocketError {
  code?: number;
  message?: string;
}

/** A TCP (or TLS) client socket of the `net` / `tls` modules. */
interface EspruinoNetSocket {
  /** Takes a byte string. A Uint8Array would be sent as its decimal TEXT ("9,8,250"). */
  write(data: string): boolean;
  end(data?: string): void;
  on(event: 'data', listener: (data: string) => void): void;
  on(event: 'close', listener: (hadError?: boolean) => void): void;
  on(event: 'error', listener: (error: EspruinoSocketError) => void): void;
  on(event: 'connect' | 'end' | 'drain', listener: () => void): void;
}

interface EspruinoConnectOptions {
  host: string;
  port: number;
  /** tls only: PEM of the CA to verify the server against; without it the server is not verified. */
  ca?: string;
}

interface EspruinoNet {
  /**
   * Opens a connection; `onConnect` runs once it is established. On Linux builds a refused
   * connection throws here; on ESP32 an 'error' then a 'close' event follows instead.
   */
  connect(options: EspruinoConnectOptions, onConnect?: () => void): EspruinoNetSocket;
}

/** ESP32 only: the `Wifi` module, as far as the firmware uses it. */
interface EspruinoWifi {
  connect(ssid: string, options: { password?: string }, callback: (error: string | null) => void): void;
  getIP(): { ip: string };
}

declare function require(moduleName: 'Storage'): EspruinoStorage;
declare function require(moduleName: 'net'): EspruinoNet;
declare function require(moduleName: 'tls'): EspruinoNet;
declare function require(moduleName: 'Wifi'): EspruinoWifi;

interface EspruinoMemory {
  /** JsVars free, used and in total (14 bytes each in the ESP32 format). */
  free: number;
  usage: number;
  total: number;
  history: number;
  blocksize?: number;
}

interface EspruinoProcess {
  memory(gc?: boolean): EspruinoMemory;
  /** For example "2v29". */
  version: string;
  env: { VERSION?: string; BOARD?: string };
}
declare var process: EspruinoProcess;

declare namespace E {
  /** Bytes (Uint8Array, array of numbers, string) as a byte string. */
  function toString(...values: unknown[]): string;
  /** CRC-32 (IEEE) of a byte string or byte array, as an unsigned number. */
  function CRC32(data: string | Uint8Array | ArrayBuffer | number[]): number;
  /** How many JsVars `value` takes (with `depth`, per child). */
  function getSizeOf(value: unknown, depth?: number): number;
  /** 'kill': called before the interpreter is torn down (reset(), load(), a new upload). */
  function on(event: 'kill', callback: () => void): void;
}
