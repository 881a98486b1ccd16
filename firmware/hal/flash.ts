// The flash boundary: a NOR flash area as the hardware names it (littlefs `struct lfs_config`).
// On a board it is backed by Espruino's Storage (firmware/hal/espruino); on a PC by the flash
// simulator in hal-mocks, which adds power loss, torn writes and wear.

/** Operating results of a flash call: a closed set, returned and handled, never thrown. */
export const flashOk = 0;
/** The bytes to program were not all erased (0xFF) and programming would need a 0 -> 1 flip. */
export const flashErrorNotErased = -1;
/** The sector has worn out: erase or program did not take. */
export const flashErrorWorn = -2;
/** The address range lies outside the area. */
export const flashErrorRange = -3;
/** Any other failure the device reported (Storage full, internal error). */
export const flashErrorIo = -4;

export type FlashResult = number;

export interface Flash {
  /** Bytes per erasable sector (4096 on the ESP32). */
  readonly sectorSize: number;
  /** Sectors in this area. The area spans sectorSize * sectorCount bytes from address 0. */
  readonly sectorCount: number;
  /** Copies `length` bytes from `address` into `into` at `intoOffset`. */
  read(address: number, into: Uint8Array, intoOffset: number, length: number): FlashResult;
  /**
   * Programs `length` bytes of `data` from `dataOffset` at `address`. NOR semantics: programming
   * can only clear bits, so every target byte must still be erased (0xFF) or hold the same value.
   */
  prog(address: number, data: Uint8Array, dataOffset: number, length: number): FlashResult;
  /** Sets every byte of `sector` back to 0xFF. */
  erase(sector: number): FlashResult;
}
