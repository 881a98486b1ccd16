// The firmware bundle's entry: wires the Espruino HAL to the core. Built into dist/firmware.js.
console.log('Tandem firmware booting');
