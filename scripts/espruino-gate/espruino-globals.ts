// The globals a script can rely on in Espruino 2v2x: the ECMAScript built-ins the probe corpus found
// present, and Espruino's own functions and objects (@types/espruino, PROFILE.md). A bundle that
// reads any other undeclared name fails on the device with ReferenceError: usually a missing import.

const ecmaScriptGlobals = [
  'Object', 'Function', 'Array', 'String', 'Number', 'Boolean', 'Math', 'JSON', 'Date', 'RegExp', 'Promise',
  'Error', 'TypeError', 'SyntaxError', 'ReferenceError', 'InternalError', 'ArrayBuffer', 'DataView',
  'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array',
  'Float32Array', 'Float64Array', 'parseInt', 'parseFloat', 'isNaN', 'isFinite', 'NaN', 'Infinity', 'undefined',
  'eval', 'encodeURIComponent', 'decodeURIComponent', 'globalThis', 'arguments',
];

const espruinoGlobals = [
  // Core, timers, console, modules.
  'E', 'require', 'process', 'console', 'global', 'Modules', 'quit', 'print', 'load', 'save', 'reset', 'dump', 'edit',
  'echo', 'trace', 'setTimeout', 'setInterval', 'clearTimeout', 'clearInterval', 'changeInterval', 'getTime',
  'setTime', 'getSerial', 'btoa', 'atob', 'Uint24Array',
  // Hardware.
  'setWatch', 'clearWatch', 'digitalRead', 'digitalWrite', 'digitalPulse', 'analogRead', 'analogWrite', 'pinMode',
  'getPinMode', 'peek8', 'peek16', 'peek32', 'poke8', 'poke16', 'poke32', 'setDeepSleep', 'setSleepIndicator',
  'setBusyIndicator', 'shiftOut', 'Pin', 'HIGH', 'LOW', 'Serial', 'Serial1', 'Serial2', 'Serial3', 'USB', 'Bluetooth',
  'LoopbackA', 'LoopbackB', 'Telnet', 'SPI', 'SPI1', 'SPI2', 'SPI3', 'I2C', 'I2C1', 'I2C2', 'I2C3', 'OneWire',
  'Waveform', 'Graphics', 'Flash', 'ESP32', 'Wifi', 'Ethernet', 'File', 'Queue', 'Task', 'Timer', 'Trig', 'Server',
  'Socket', 'NetworkJS', 'AES', 'HASH', 'hashlib', 'fs', 'http', 'net', 'tls', 'url', 'neopixel',
];

const known = new Set([...ecmaScriptGlobals, ...espruinoGlobals]);

/** True when `name` exists as a global on Espruino (pins D0.. and LEDs/buttons included). */
export function isEspruinoGlobal(name: string): boolean {
  return known.has(name) || /^D\d+$/.test(name) || /^(LED|BTN)\d*$/.test(name);
}
