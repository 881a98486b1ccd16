// CRC-32 (IEEE 802.3, CRC-32/ISO-HDLC: reflected, polynomial 0xEDB88320, init and xorout
// 0xFFFFFFFF), the same function as Espruino's native E.CRC32 [WIRE-5]. The cloud uses this JS
// version; the device injects E.CRC32 so it never builds the table. Firmware-grade.

/** A CRC-32 over `length` bytes of `bytes` from `offset`, as an unsigned 32-bit number. */
export type Crc32 = (bytes: Uint8Array, offset: number, length: number) => number;

// Built on first use only (1 KiB), so a device that injects E.CRC32 never pays for it.
let table: Int32Array | null = null;

function buildTable(): Int32Array {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
}

/** Table-driven CRC-32 in plain JS. `crc32(bytesOf('hello'), 0, 5) === 907060870`. */
export function crc32(bytes: Uint8Array, offset: number, length: number): number {
  if (table === null) table = buildTable();
  const t = table;
  let c = -1;
  const end = offset + length;
  for (let i = offset; i < end; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/**
 * CRC-32 of a byte string (char codes 0..255), used for template hashes at start-up. Bit by bit,
 * without the table: a device that injects E.CRC32 for frames never needs the 1 KiB table (77
 * JsVars on Espruino), and hashing a few short descriptions once is cheap.
 */
export function crc32OfByteString(text: string): number {
  let c = -1;
  for (let i = 0; i < text.length; i++) {
    c ^= text.charCodeAt(i) & 0xff;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ -1) >>> 0;
}
