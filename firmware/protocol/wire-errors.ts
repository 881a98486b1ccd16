// The closed set of wire codec results [WIRE-40]. Every encode and decode call returns one of
// these numbers; none of them throws on bad input (a thrown error from the codec is a bug).
// Firmware-grade: runs on Espruino and in Node.

/** Success. Functions that return a length or an offset return it as a number >= 0 instead. */
export const wireOk = 0;
/** The input ended before the frame, record or value did. */
export const wireErrorTruncated = -1;
/** The frame's CRC32 does not match its bytes. */
export const wireErrorCrc = -2;
/** The frame names a protocol version this side does not speak. */
export const wireErrorVersion = -3;
/** The first byte names no frame type this codec knows. */
export const wireErrorFrameType = -4;
/** The frame's template hash is not in the registry: the cloud never guesses a template. */
export const wireErrorUnknownTemplate = -5;
/** The record count is zero or above wireRecordsPerFrameMax. */
export const wireErrorCount = -6;
/** A value is outside its field's declared range, enum or length (decode or encode). */
export const wireErrorRange = -7;
/** A variable-length code is longer than the largest value it may carry. */
export const wireErrorCode = -8;
/** Bytes or non-zero padding bits are left after the last record. */
export const wireErrorTrailing = -9;
/** The frame is longer than wireFrameBytesMax. */
export const wireErrorFrameSize = -10;
/** Untemplated data nests deeper than wireUntemplatedDepthMax. */
export const wireErrorDepth = -11;
/** Encode: the output buffer has no room for this record (the frame so far stays valid). */
export const wireErrorFull = -12;
/** Encode: a value has the wrong type for its field (or is missing, NaN, not an integer). */
export const wireErrorType = -13;
/** Decode of untemplated data: a tag byte names no known type. */
export const wireErrorTag = -14;

const names = [
  'ok',
  'truncated',
  'crc mismatch',
  'unsupported protocol version',
  'unknown frame type',
  'unknown template hash',
  'bad record count',
  'value out of range',
  'over-long code',
  'trailing bytes',
  'frame too large',
  'nesting too deep',
  'output buffer full',
  'wrong value type',
  'unknown tag',
];

/** The lowest (most negative) code in the closed set, for tests and the fuzzer. */
export const wireErrorLowest = -14;

/** True when `code` is one of the codes above (wireOk included). */
export function isWireCode(code: number): boolean {
  return typeof code === 'number' && code <= 0 && code >= wireErrorLowest && code === Math.floor(code);
}

/** A short English name for a code, for logs and CLI messages. */
export function wireErrorName(code: number): string {
  if (!isWireCode(code)) return 'not a wire code (' + code + ')';
  return names[-code];
}
