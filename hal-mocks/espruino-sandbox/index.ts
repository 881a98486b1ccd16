// The Espruino sandbox in one import: run the firmware bundle as a device on this PC.
export { EspruinoSandbox, espruinoVersion, jsVarsAfterBootEstimate, jsVarsAtBootEstimate, type EspruinoSandboxOptions, type SandboxHaltReason, type SandboxPlatform, type SandboxState } from './sandbox.ts';
export { EspruinoStorage, EspruinoStorageFile, PowerLossError, storageFileChunkBytes, storageHeaderBytes, storageNameBytesMax, type EspruinoStorageOptions, type StorageRealm } from './storage.ts';
export { RealScheduler, VirtualScheduler, type SandboxScheduler } from './scheduler.ts';
export { socketChunkBytesMax } from './sockets.ts';
export { writeDeviceConfigToFlash } from './device-flash.ts';
