// The Espruino sandbox: runs the built bundle (dist/firmware.js, minified, as it would be uploaded)
// in a Node vm context that offers only Espruino's globals, with Storage kept in a flash image file
// and sockets over real TCP. One instance is one device; it can be stopped and power-cycled.
//
// Fault model: see storage.ts (NOR flash, power cuts) and sockets.ts (real TCP, 536-byte chunks).
// Power loss: when the flash reports a power cut the device halts at once (timers and sockets are
// dropped, nothing more runs) until powerCycle(). Not modelled: Espruino's interpreter itself
// (no hoisting, shared `for (let ...)` bindings, missing Array.prototype.*, speed and memory
// limits): the build gate and a real binary (real-espruino.ts) catch those.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { bytesOf, byteString, crc32, formatValue, guardPrimitivePrototypes, hideMissingBuiltinsScript, sizeOfJsVars, type ContextRealm } from './globals.ts';
import { RealScheduler, type SandboxScheduler } from './scheduler.ts';
import { createNetModule, SocketRegistry, type SocketHost } from './sockets.ts';
import { EspruinoStorage, PowerLossError, type StorageRealm } from './storage.ts';
import { seededRandom } from '../seeded-random.ts';

/** 'esp32' offers the Wifi module and reports BOARD "ESP32"; 'linux' has no Wifi but has quit(). */
export type SandboxPlatform = 'esp32' | 'linux';

/** 'off' before boot(), after stop(), quit() or a power cut. */
export type SandboxState = 'off' | 'running';

export interface EspruinoSandboxOptions {
  /** The bundle to run; default dist/firmware.js of the current folder. Read at every boot. */
  bundlePath?: string;
  /** The bundle text itself, instead of bundlePath. */
  code?: string;
  /** The flash image file. Without one the flash lives in memory (kept across power cycles). */
  flashImagePath?: string;
  /** Storage geometry; default 224 pages of 4096 bytes (the ESP32's 896 KB). */
  flashPageCount?: number;
  flashPageBytes?: number;
  /** Default 'esp32'. */
  platform?: SandboxPlatform;
  /** Receives each line the device prints; default: printed to stdout. */
  onConsoleLine?: (line: string) => void;
  /** Default: real host timers. Pass a VirtualScheduler for deterministic simulations. */
  scheduler?: SandboxScheduler;
  /** esp32 only: the access point in range. Default: any SSID and password join. */
  wifiAccessPoint?: { ssid: string; password?: string };
  /** JsVars process.memory() reports in total; default 16383 (ESP32 format). */
  jsVarsTotal?: number;
  /**
   * 'warn': at boot, warn when the bundle likely needs more JsVars than jsVarsTotal while it starts
   * as a file from RAM (see jsVarsAtBootEstimate). 'off' (default): a board boots the bundle from
   * Storage, where function code stays in flash and this estimate does not apply.
   */
  memoryCheck?: 'warn' | 'off';
  /** The sandbox's own warnings (not device output); default: written to stderr. */
  onSandboxWarning?: (message: string) => void;
  /** Seeds Math.random (and E.hwRand) so a simulation replays; default: host randomness. */
  randomSeed?: number;
  /** Called when the device stops running: 'stop', 'quit' (linux) or 'power-loss'. */
  onHalt?: (reason: SandboxHaltReason) => void;
}

export type SandboxHaltReason = 'stop' | 'quit' | 'power-loss';

export const espruinoVersion = '2v29';

/**
 * JsVars a bundle of `codeBytes` needs while its top level runs, when loaded as a file from RAM:
 * the whole source plus a copy of every function body defined. Calibrated on the Linux build
 * (2v29): 18,812 bytes of functions peaked at 5,858 JsVars; a 52 KB bundle ran out of 16,383.
 * An estimate for a warning, not a memory model.
 */
export function jsVarsAtBootEstimate(codeBytes: number): number {
  return 45 + Math.ceil(codeBytes * 0.31);
}

/** JsVars a bundle still holds once booted (its functions' source): 686 for 3,954 bytes on 2v29. */
export function jsVarsAfterBootEstimate(codeBytes: number): number {
  return 45 + Math.ceil(codeBytes * 0.16);
}
const defaultPageCount = 224;
const defaultPageBytes = 4096;
const wifiJoinDelayMs = 100;

interface DeviceTimer {
  handle: number;
  callback: unknown;
  args: unknown[];
  periodMs: number | undefined;
}

export class EspruinoSandbox {
  /** Exceptions no firmware code caught, as the console reported them ("Uncaught ..."). */
  readonly uncaughtErrors: unknown[] = [];
  /** What the sandbox warned about (see memoryCheck). */
  readonly warnings: string[] = [];
  private readonly options: EspruinoSandboxOptions;
  private readonly scheduler: SandboxScheduler;
  private readonly sockets = new SocketRegistry();
  private readonly timers = new Map<number, DeviceTimer>();
  private nextTimerId = 1;
  private context: vm.Context | undefined;
  private realm: ContextRealm | undefined;
  private currentStorage: EspruinoStorage | undefined;
  private memoryImage: Uint8Array | undefined;
  private currentState: SandboxState = 'off';
  private bootCount = 0;
  private bootedAtMs = 0;
  private killListeners: unknown[] = [];
  private random: (() => number) | undefined;

  constructor(options: EspruinoSandboxOptions = {}) {
    this.options = options;
    this.scheduler = options.scheduler ?? new RealScheduler();
  }

  get state(): SandboxState {
    return this.currentState;
  }

  /** The device's Storage while it runs (for inspection and emulator controls). */
  get storage(): EspruinoStorage {
    if (this.currentStorage === undefined) throw new Error('EspruinoSandbox: the device is off');
    return this.currentStorage;
  }

  /** Device timers currently set. */
  get timerCount(): number {
    return this.timers.size;
  }

  /** Device sockets currently open. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** Bytes on the wire since this object was made (all boots): what a cellular plan would bill. */
  get bytesSent(): number {
    return this.sockets.bytesSent;
  }

  get bytesReceived(): number {
    return this.sockets.bytesReceived;
  }

  get networkOnline(): boolean {
    return this.sockets.online;
  }

  /**
   * Takes the device's network down or brings it back (the dashboard's offline control): open
   * sockets fail with 'error' then 'close', and connects fail until it is back. Kept across boots.
   */
  setNetworkOnline(online: boolean): void {
    this.sockets.setOnline(online);
  }

  /** Powers the device on: opens its flash and runs the bundle from the top. */
  boot(): void {
    if (this.currentState === 'running') throw new Error('EspruinoSandbox: already running');
    const code = this.options.code ?? readFileSync(this.options.bundlePath ?? 'dist/firmware.js', 'utf8');
    this.context = vm.createContext({}, { name: 'espruino', codeGeneration: { strings: true, wasm: false } });
    vm.runInContext(hideMissingBuiltinsScript, this.context);
    guardPrimitivePrototypes(vm.runInContext('({ String, Number, Object, Error })', this.context) as Parameters<typeof guardPrimitivePrototypes>[0]);
    this.realm = vm.runInContext('({ Array, ArrayBuffer, Uint8Array, Error, TypeError, JSON, Object })', this.context) as ContextRealm;
    this.currentStorage = this.openStorage();
    this.installGlobals(this.context, code.length);
    this.currentState = 'running';
    this.bootCount++;
    this.bootedAtMs = this.scheduler.nowMs();
    const jsVarsTotal = this.options.jsVarsTotal ?? 16383;
    const peak = jsVarsAtBootEstimate(code.length);
    if ((this.options.memoryCheck ?? 'off') === 'warn' && peak > jsVarsTotal) {
      this.warn(`a ${code.length}-byte bundle needs about ${peak} JsVars while it boots as a file, more than the ${jsVarsTotal} there are: a real Espruino running it as a file runs out of memory (boot it from Storage instead).`);
    }
    this.runDevice(() => vm.runInContext(code, this.context!, { filename: 'firmware.js' }));
  }

  /** Stops the device: clears its timers, drops its sockets, releases the flash image. */
  stop(): void {
    this.halt('stop');
  }

  /** Power off and on again on the same flash. */
  powerCycle(): void {
    if (this.currentState !== 'off') this.halt('stop');
    this.boot();
  }

  /** Runs a snippet in the device's context (tests, the emulator console). */
  evaluate(code: string): unknown {
    if (this.context === undefined || this.currentState !== 'running') throw new Error('EspruinoSandbox: the device is not running');
    return vm.runInContext(code, this.context, { filename: 'console' });
  }

  // ---- Device lifecycle --------------------------------------------------------------------------

  private openStorage(): EspruinoStorage {
    const realm = this.realm!;
    const storageRealm: StorageRealm = {
      newArray: () => new realm.Array<unknown>(),
      newArrayBuffer: (bytes) => {
        const buffer = new realm.ArrayBuffer(bytes.length);
        new realm.Uint8Array(buffer).set(bytes);
        return buffer;
      },
      parseJson: (text) => realm.JSON.parse(text) as unknown,
      newError: (message) => new realm.Error(message),
    };
    return new EspruinoStorage({
      pageBytes: this.options.flashPageBytes ?? defaultPageBytes,
      pageCount: this.options.flashPageCount ?? defaultPageCount,
      ...(this.options.flashImagePath !== undefined ? { imagePath: this.options.flashImagePath } : {}),
      ...(this.options.flashImagePath === undefined && this.memoryImage !== undefined ? { image: this.memoryImage } : {}),
      realm: storageRealm,
      onCompaction: () => this.printLine('Compacting...'),
    });
  }

  private halt(reason: SandboxHaltReason): void {
    if (this.currentState === 'off') return;
    // A clean stop lets E.on('kill') listeners run first, as Espruino does before a reset.
    if (reason !== 'power-loss' && this.currentState === 'running') for (const listener of this.killListeners.splice(0)) this.runCallback(listener, []);
    this.killListeners = [];
    const wasRunning = this.currentState === 'running';
    this.currentState = 'off';
    for (const timer of this.timers.values()) this.scheduler.cancel(timer.handle);
    this.timers.clear();
    this.sockets.destroyAll();
    if (this.currentStorage !== undefined) {
      if (this.options.flashImagePath === undefined) this.memoryImage = this.currentStorage.imageBytes();
      this.currentStorage.close();
    }
    this.currentStorage = undefined;
    this.context = undefined;
    if (wasRunning) this.options.onHalt?.(reason);
  }

  /** Runs device code as the interpreter's idle loop does: an uncaught error is printed, not fatal. */
  private runDevice(body: () => unknown): void {
    if (this.currentState !== 'running') return;
    try {
      body();
    } catch (error) {
      if (error instanceof PowerLossError || this.currentStorage?.isPoweredOff === true) {
        this.powerLost();
        return;
      }
      this.uncaughtErrors.push(error);
      this.printLine(`Uncaught ${describeError(error)}`);
    }
    // Firmware may have caught the PowerLossError itself; the device is off all the same.
    if (this.currentState === 'running' && this.currentStorage?.isPoweredOff === true) this.powerLost();
  }

  private powerLost(): void {
    this.halt('power-loss');
    // Not the device's output: the emulator's note in the console stream.
    this.printLine('-- power lost --');
  }

  private runCallback(callback: unknown, args: unknown[]): void {
    if (typeof callback !== 'function') return;
    this.runDevice(() => (callback as (...values: unknown[]) => unknown)(...args));
  }

  /** Each distinct warning once per sandbox, not at every power cycle. */
  private warn(message: string): void {
    if (this.warnings.includes(message)) return;
    this.warnings.push(message);
    if (this.options.onSandboxWarning !== undefined) this.options.onSandboxWarning(message);
    else process.stderr.write(`espruino-sandbox: ${message}\n`);
  }

  private printLine(line: string): void {
    // After a power cut nothing more comes out, even if the firmware caught the error.
    if (this.currentState === 'running' && this.currentStorage?.isPoweredOff === true) return;
    if (this.options.onConsoleLine !== undefined) this.options.onConsoleLine(line);
    else process.stdout.write(`${line}\n`);
  }

  // ---- Timers ------------------------------------------------------------------------------------

  private addTimer(callback: unknown, delayMs: unknown, args: unknown[], periodic: boolean): number {
    if (typeof callback !== 'function') throw new this.realm!.TypeError('Function or String not supplied!');
    const id = this.nextTimerId++;
    const ms = Math.max(0, Number(delayMs) || 0);
    const timer: DeviceTimer = { handle: 0, callback, args, periodMs: periodic ? ms : undefined };
    this.timers.set(id, timer);
    this.armTimer(id, timer, ms);
    return id;
  }

  private armTimer(id: number, timer: DeviceTimer, delayMs: number): void {
    timer.handle = this.scheduler.schedule(delayMs, () => {
      if (this.timers.get(id) !== timer) return;
      if (timer.periodMs === undefined) this.timers.delete(id);
      else this.armTimer(id, timer, timer.periodMs);
      this.runCallback(timer.callback, timer.args);
    });
  }

  private clearTimer(args: unknown[]): void {
    // Espruino: with no argument at all, every timer and interval is cleared.
    if (args.length === 0) {
      for (const timer of this.timers.values()) this.scheduler.cancel(timer.handle);
      this.timers.clear();
      return;
    }
    const id = Number(args[0]);
    const timer = this.timers.get(id);
    if (timer === undefined) return;
    this.scheduler.cancel(timer.handle);
    this.timers.delete(id);
  }

  // ---- Globals -----------------------------------------------------------------------------------

  private installGlobals(context: vm.Context, codeBytes: number): void {
    const realm = this.realm!;
    const platform = this.options.platform ?? 'esp32';
    const storage = this.currentStorage!;
    const jsVarsTotal = this.options.jsVarsTotal ?? 16383;
    // No per-object accounting: the source the bundle keeps in RAM, calibrated on the Linux build.
    const jsVarsUsed = Math.min(jsVarsTotal, jsVarsAfterBootEstimate(codeBytes));
    const socketHost: SocketHost = {
      run: (callback, args) => this.runCallback(callback, args),
      isPowered: () => this.currentState === 'running' && this.currentStorage?.isPoweredOff !== true,
      newError: (message) => new realm.Error(message),
      newInternalError: (message) => {
        const error = new realm.Error(message);
        error.name = 'InternalError';
        return error;
      },
      reportUncaught: (error) => this.runDevice(() => {
        throw error;
      }),
      newObject: (fields) => realm.Object.assign(new realm.Object(), fields) as object,
    };
    const modules: Record<string, unknown> = {
      Storage: storage,
      net: createNetModule(socketHost, this.sockets, false),
      tls: createNetModule(socketHost, this.sockets, true),
    };
    if (platform === 'esp32') modules.Wifi = this.wifiModule();
    const cachedModules = new Map<string, unknown>();
    const print = (...values: unknown[]): void => this.printLine(values.map(formatValue).join(' '));

    const globals: Record<string, unknown> = {
      console: { log: print },
      print,
      getTime: () => this.scheduler.epochMs() / 1000,
      setTimeout: (callback: unknown, delayMs?: unknown, ...args: unknown[]) => this.addTimer(callback, delayMs, args, false),
      setInterval: (callback: unknown, periodMs?: unknown, ...args: unknown[]) => this.addTimer(callback, periodMs, args, true),
      clearTimeout: (...args: unknown[]) => this.clearTimer(args),
      clearInterval: (...args: unknown[]) => this.clearTimer(args),
      changeInterval: (id: unknown, periodMs: unknown) => {
        const timer = this.timers.get(Number(id));
        if (timer === undefined || timer.periodMs === undefined) return;
        this.scheduler.cancel(timer.handle);
        timer.periodMs = Math.max(0, Number(periodMs) || 0);
        this.armTimer(Number(id), timer, timer.periodMs);
      },
      require: (name: unknown) => {
        const key = String(name);
        if (Object.prototype.hasOwnProperty.call(modules, key)) return modules[key];
        if (cachedModules.has(key)) return cachedModules.get(key);
        throw new realm.Error(`Module ${key} not found`);
      },
      Modules: {
        addCached: (name: unknown, source: unknown) => {
          const module = { exports: new realm.Object() };
          const factory = vm.runInContext(`(function (exports, module) {${String(source)}\n})`, context) as (exports: unknown, module: unknown) => void;
          factory(module.exports, module);
          cachedModules.set(String(name), module.exports);
        },
        removeCached: (name: unknown) => cachedModules.delete(String(name)),
        removeAllCached: () => cachedModules.clear(),
        getCached: () => {
          const names = new realm.Array<string>();
          for (const name of cachedModules.keys()) names.push(name);
          return names;
        },
      },
      E: {
        toString: (...values: unknown[]) => byteString(bytesOf(values)),
        toUint8Array: (...values: unknown[]) => {
          const bytes = bytesOf(values);
          const array = new realm.Uint8Array(bytes.length);
          array.set(bytes);
          return array;
        },
        toArrayBuffer: (text: unknown) => {
          const bytes = bytesOf([String(text)]);
          const array = new realm.Uint8Array(bytes.length);
          array.set(bytes);
          return array.buffer;
        },
        CRC32: (data: unknown) => crc32(bytesOf([data])),
        getSizeOf: (value: unknown, depth?: unknown) => sizeOfJsVars(value, depth === undefined ? 8 : Number(depth)),
        getErrorFlags: () => new realm.Array(),
        /** Events of E: 'kill' listeners run when the device is stopped or power-cycled cleanly. */
        on: (event: unknown, listener: unknown) => {
          if (String(event) === 'kill') this.killListeners.push(listener);
        },
        toJS: (value: unknown) => formatValue(value),
      },
      process: {
        version: espruinoVersion,
        env: { VERSION: espruinoVersion, BOARD: platform === 'esp32' ? 'ESP32' : 'LINUX' },
        memory: () => ({ free: jsVarsTotal - jsVarsUsed, usage: jsVarsUsed, total: jsVarsTotal, history: 0, gc: 0, gctime: 0, blocksize: 14 }),
      },
      btoa: (text: unknown) => Buffer.from(String(text), 'latin1').toString('base64'),
      atob: (text: unknown) => Buffer.from(String(text), 'base64').toString('latin1'),
    };
    if (platform === 'linux') globals.quit = () => this.scheduler.schedule(0, () => this.halt('quit'));
    for (const [name, value] of Object.entries(globals)) context[name] = value;
    // Date.now() and new Date() follow the scheduler, so a virtual clock is also the wall clock.
    const installDate = vm.runInContext(
      `(function (now) {
        var HostDate = Date;
        var DeviceDate = class Date extends HostDate {
          constructor(...args) { if (args.length === 0) super(now()); else super(...args); }
        };
        DeviceDate.now = now;
        globalThis.Date = DeviceDate;
      })`,
      context,
    ) as (now: () => number) => void;
    installDate(() => Math.floor(this.scheduler.epochMs()));
    if (this.options.randomSeed !== undefined) {
      // Each boot continues the sequence, so power cycles differ but a whole run replays.
      const next = this.random ?? seededRandom(this.options.randomSeed);
      this.random = next;
      (vm.runInContext('Math', context) as Math).random = next;
      (globals.E as Record<string, unknown>).hwRand = () => Math.floor(next() * 2 ** 32) | 0;
    }
  }

  private wifiModule(): unknown {
    const accessPoint = this.options.wifiAccessPoint;
    let connected = false;
    return {
      connect: (ssid: unknown, options: unknown, callback: unknown) => {
        const password = (options as { password?: unknown } | undefined)?.password;
        let error: string | null = null;
        if (accessPoint !== undefined && String(ssid) !== accessPoint.ssid) error = 'no_ap_found';
        else if (accessPoint?.password !== undefined && password !== accessPoint.password) error = 'auth_fail';
        this.scheduler.schedule(wifiJoinDelayMs, () => {
          connected = error === null;
          this.runCallback(callback, [error]);
        });
      },
      disconnect: (callback: unknown) => {
        connected = false;
        this.scheduler.schedule(0, () => this.runCallback(callback, []));
      },
      getIP: () => ({ ip: connected ? '127.0.0.1' : '0.0.0.0', netmask: '255.0.0.0', gw: '127.0.0.1', mac: '24:0a:c4:00:00:01' }),
      getDetails: () => ({ status: connected ? 'connected' : 'off' }),
      on: () => undefined,
    };
  }

  /** Milliseconds since the current boot, on the sandbox's clock. */
  get uptimeMs(): number {
    return this.currentState === 'running' ? this.scheduler.nowMs() - this.bootedAtMs : 0;
  }

  /** How many times boot() has run on this object. */
  get boots(): number {
    return this.bootCount;
  }
}


function describeError(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'message' in error) {
    const name = (error as { name?: unknown }).name;
    return `${typeof name === 'string' && name !== '' ? name : 'Error'}: ${String((error as { message: unknown }).message)}`;
  }
  return formatValueSafe(error);
}

function formatValueSafe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
