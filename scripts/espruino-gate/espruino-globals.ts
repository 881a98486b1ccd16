// The globals a script can rely on in Espruino 2v2x, as the real interpreter lists them. A bundle
// that reads any other undeclared name fails on the device with ReferenceError: usually a missing
// import.

/**
 * `Object.getOwnPropertyNames(global)` of the Espruino 2v29 Linux build, plus `undefined`. The ESP32
 * build has the same core; its modules (Wifi, ESP32, net, tls, Storage ...) come through require().
 * Missing built-ins (Map, Set, ...) are refused by their own rule with a hint.
 */
const espruinoGlobalNames = [
  'quit', 'interrupt', 'Object', 'Function', 'AES', 'Array', 'ArrayBuffer', 'ArrayBufferView', 'Boolean', 'DataView',
  'Date', 'E', 'Error', 'File', 'Float32Array', 'Float64Array', 'Graphics', 'HIGH', 'I2C', 'I2C1', 'I2C2', 'I2C3',
  'Infinity', 'Int16Array', 'Int32Array', 'Int8Array', 'InternalError', 'JSON', 'LOW', 'LoopbackA', 'LoopbackB', 'Math',
  'Modules', 'NaN', 'Number', 'OneWire', 'Pin', 'Promise', 'ReferenceError', 'RegExp', 'SPI', 'SPI1', 'SPI2', 'SPI3',
  'Serial', 'Serial1', 'Serial2', 'Serial3', 'Serial4', 'Serial5', 'Serial6', 'Server', 'Socket', 'StorageFile',
  'String', 'SyntaxError', 'Telnet', 'TypeError', 'USB', 'Uint16Array', 'Uint24Array', 'Uint32Array', 'Uint8Array',
  'Uint8ClampedArray', 'Waveform', 'analogRead', 'analogWrite', 'arguments', 'atob', 'btoa', 'changeInterval',
  'clearInterval', 'clearTimeout', 'clearWatch', 'console', 'decodeURIComponent', 'dgramSocket', 'digitalPulse',
  'digitalRead', 'digitalWrite', 'dump', 'echo', 'edit', 'encodeURIComponent', 'eval', 'getPinMode', 'getSerial',
  'getTime', 'global', 'globalThis', 'httpCRq', 'httpCRs', 'httpSRq', 'httpSRs', 'httpSrv', 'isFinite', 'isNaN', 'load',
  'parseFloat', 'parseInt', 'peek16', 'peek32', 'peek8', 'pinMode', 'poke16', 'poke32', 'poke8', 'print', 'process',
  'require', 'reset', 'save', 'setBusyIndicator', 'setInterval', 'setSleepIndicator', 'setTime', 'setTimeout',
  'setWatch', 'shiftOut', 'trace', 'url', 'undefined',
];

const known = new Set(espruinoGlobalNames);

/** True when `name` exists as a global on Espruino (pins D0..D39 included). */
export function isEspruinoGlobal(name: string): boolean {
  return known.has(name) || /^D\d+$/.test(name);
}
