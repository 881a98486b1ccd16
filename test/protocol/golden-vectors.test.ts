// Golden byte vectors, both directions [WIRE-2][WIRE-3][WIRE-4][WIRE-30][WIRE-50]: each frame is
// written out by hand, byte by byte (and bit group by bit group in the bit stream), so a change
// to the wire format shows up here as a diff, not as a silent incompatibility with old devices.
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { createFrameEncoder, frameEncodeAppend, frameEncodeBegin, frameEncodeFinish } from '../../firmware/protocol/frame.ts';
import { decodeRecord, encodeRecord } from '../../firmware/protocol/record.ts';
import { createTemplateRegistry, defineTemplate, type WireValue } from '../../firmware/protocol/template.ts';
import { createDefaultRegistry, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { createUntemplatedEncoder, untemplatedEncodeAppend, untemplatedEncodeBegin, untemplatedEncodeFinish } from '../../firmware/protocol/untemplated.ts';
import { decodeFrame, encodeRecordsToFrames } from '../../firmware/protocol/wire-objects.ts';

/** Bytes from annotated hex: everything after `#` on a line is a comment. */
function hexBytes(text: string): number[] {
  const digits = text.split('\n').map((row) => row.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
  const bytes: number[] = [];
  for (let i = 0; i < digits.length; i += 2) bytes.push(parseInt(digits.slice(i, i + 2), 16));
  return bytes;
}

/** Bits from annotated binary (MSB first), padded with zeros to whole bytes [WIRE-12]. */
function bitBytes(text: string): number[] {
  let bits = text.split('\n').map((row) => row.replace(/#.*$/, '')).join('').replace(/\s+/g, '');
  while (bits.length % 8 !== 0) bits += '0';
  const bytes: number[] = [];
  for (let i = 0; i < bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return bytes;
}

function withCrc(bytes: number[]): Uint8Array {
  const frame = new Uint8Array(bytes.length + 4);
  frame.set(bytes);
  const crc = crc32(frame, 0, bytes.length);
  frame.set([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24], bytes.length);
  return frame;
}

const t0 = 1764201600000;
const telemetryRecords = [
  { ts: t0, temp: 21.5, hum: 45, batt: 3950 },
  { ts: t0 + 60_000, temp: 21.6, hum: 45, batt: 3950 },
  { ts: t0 + 122_000, temp: 21.4, hum: 46, batt: 3949 },
];

const telemetryHeader = hexBytes(`
  01            # [WIRE-1] frame type: templated batch
  01            # [WIRE-1] protocol version 1
  17 c3 5a 23   # [WIRE-2] template hash 0x235ac317 (telemetry v1), little-endian
  03            # [WIRE-2] record count
  01            # [WIRE-2] first sequence number, varint: 1
  80 a9 9e c9 06 # [WIRE-2] base time, varint: 1764201600 s (record 0's ts / resolution)
`);

const telemetryBits = bitBytes(`
  # record 0 [WIRE-3]: absolute values, Exp-Golomb of (q - min) [WIRE-11]
  #   ts: nothing, it is the base
  000000000 1001101000      # temp 21.5 -> q 215, minus min -400 = 615: EG(615), 616 in 10 bits
  00000 101110              # hum 45: EG(45), 46 in 6 bits
  00000000000 111101101111  # batt 3950: EG(3950), 3951 in 12 bits
  # record 1: ts sets the expected interval, the rest are adaptive Rice deltas [WIRE-13]
  000000 1111001            # ts +60 s: EG(zigzag 60 = 120)
  110                       # temp +1 -> zigzag 2, k=0: quotient 2 = "110"
  0                         # hum +0 -> zigzag 0, k=0
  0                         # batt +0
  # record 2
  11110                     # ts +62 s = expected 60 + 2 -> zigzag 4, k=0: "11110"
  10 1                      # temp -2 -> zigzag 3, k=1 (sum 3, count 2): quotient 1 "10", low bit 1
  110                       # hum +1 -> zigzag 2, k=0
  10                        # batt -1 -> zigzag 1, k=0
  # 84 bits: 4 zero bits pad the last byte [WIRE-12]
`);

describe('golden vectors: templated batch frame [WIRE-2][WIRE-3][WIRE-4]', () => {
  const golden = withCrc([...telemetryHeader, ...telemetryBits]);

  it('encodes three telemetry records to exactly the annotated bytes', () => {
    const encoder = createFrameEncoder();
    const out = new Uint8Array(100);
    expect(frameEncodeBegin(encoder, telemetryTemplate, out, 0, out.length, 1)).toBe(0);
    for (const record of telemetryRecords) expect(frameEncodeAppend(encoder, [record.ts, record.temp, record.hum, record.batt])).toBe(0);
    const length = frameEncodeFinish(encoder);
    expect(Buffer.from(out.subarray(0, length)).toString('hex')).toBe(Buffer.from(golden).toString('hex'));
    expect(length).toBe(8 + 5 + 11 + 4); // header, base time, 84 bits of records, CRC
  });

  it('decodes the annotated bytes back to the records', () => {
    const decoded = decodeFrame(golden, createDefaultRegistry());
    expect(decoded).toMatchObject({ ok: true, kind: 'batch', firstSeq: 1, records: telemetryRecords });
  });

  it('ends with the CRC-32 of everything before it, little-endian [WIRE-4]', () => {
    expect(Buffer.from(golden.subarray(golden.length - 4)).toString('hex')).toBe(
      Buffer.from(new Uint32Array([crc32(golden, 0, golden.length - 4)]).buffer).toString('hex'),
    );
  });
});

describe('golden vectors: enum, bool, string and f32 fields [WIRE-3][WIRE-21]', () => {
  const mixed = defineTemplate({
    name: 'golden-mixed',
    id: 200,
    version: 1,
    fields: [
      { name: 't', type: 'timestamp', resolutionMs: 1000 },
      { name: 'mode', type: 'enum', values: ['idle', 'run', 'stop'] },
      { name: 'on', type: 'bool' },
      { name: 'label', type: 'string', maxLength: 8 },
      { name: 'gain', type: 'f32' },
    ],
  });
  const records = [
    { t: t0, mode: 'run', on: true, label: 'ab', gain: 1.5 },
    { t: t0 + 30_000, mode: 'run', on: false, label: 'ab', gain: 1.5 },
    { t: t0 + 60_000, mode: 'stop', on: false, label: 'c', gain: 2 },
  ];
  const golden = withCrc([
    ...hexBytes(`
      01 01         # batch frame, version 1
      3a 98 e4 b1   # template hash 0xb1e4983a (golden-mixed v1)
      03 00         # 3 records, first sequence 0
      80 a9 9e c9 06 # base time 1764201600 s
    `),
    ...bitBytes(`
      # record 0
      010           # mode run: EG(1 - 0)
      1             # on: true
      011 01100001 01100010  # label: EG(length 2), "a", "b"
      00111111 11000000 00000000 00000000  # gain 1.5 as IEEE single 0x3fc00000
      # record 1
      00000 111101  # t +30 s: EG(zigzag 30 = 60); expected interval 30
      0             # mode unchanged: Rice k=0 of zigzag 0
      0             # on: false
      0             # label: same as before
      0             # gain: same bits as before
      # record 2
      0             # t +30 s = expected: zigzag 0
      110           # mode run -> stop: +1, zigzag 2, k=0
      0             # on: false
      1 010 01100011  # label changed: EG(length 1), "c"
      1 01000000 00000000 00000000 00000000  # gain changed: 2.0 = 0x40000000
    `),
  ]);

  it('encodes to exactly the annotated bytes and decodes back', () => {
    const encoded = encodeRecordsToFrames(mixed, records);
    if (!encoded.ok) throw new Error(encoded.error.message);
    expect(Buffer.from(encoded.frames[0]).toString('hex')).toBe(Buffer.from(golden).toString('hex'));
    expect(decodeFrame(golden, createTemplateRegistry([mixed]))).toMatchObject({ ok: true, records });
  });
});

describe('golden vectors: single record [WIRE-30][WIRE-31]', () => {
  const golden = hexBytes(`
    80 a9 9e c9 06  # ts: varint of (q - 0) = 1764201600
    e7 04           # temp 21.5: varint of (215 - (-400)) = 615
    2d              # hum 45: varint 45
    ee 1e           # batt 3950: varint 3950
  `);

  it('encodes a telemetry record to the annotated bytes and back', () => {
    const out = new Uint8Array(32);
    const length = encodeRecord(telemetryTemplate, [t0, 21.5, 45, 3950], out, 0, out.length);
    expect([...out.subarray(0, length)]).toEqual(golden);
    const values: WireValue[] = [];
    expect(decodeRecord(telemetryTemplate, new Uint8Array(golden), 0, golden.length, values)).toBe(golden.length);
    expect(values).toEqual([t0, 21.5, 45, 3950]);
  });
});

describe('golden vectors: untemplated frame [WIRE-50][WIRE-51][WIRE-52]', () => {
  const golden = withCrc(
    hexBytes(`
      02            # [WIRE-1] frame type: untemplated
      01            # protocol version 1
      02            # record count
      05            # first sequence number, varint: 5
      # record 0: {"id":"a1","t":-3,"v":1.5}
      a3            # object of 3 entries (0xa0 + 3)
      04 69 64      # key, literal: varint 2*2 = 4, "id" (remembered as key 0)
      82 61 31      # string of 2 bytes (0x80 + 2): "a1"
      02 74         # key, literal: varint 1*2, "t" (key 1)
      fd            # -3: negative inline (0xe0 + 32 - 3)
      02 76         # key, literal: "v" (key 2)
      c5 00 00 c0 3f # float32 1.5, little-endian
      # record 1: {"id":"b","t":300,"v":null}
      a3            # object of 3 entries
      01            # key back-reference: varint 0*2+1 -> "id"
      81 62         # "b"
      03            # key back-reference 1 -> "t"
      c3 ac 02      # uint, varint 300
      05            # key back-reference 2 -> "v"
      c0            # null
    `),
  );
  const records = [
    { id: 'a1', t: -3, v: 1.5 },
    { id: 'b', t: 300, v: null },
  ];

  it('encodes two records to exactly the annotated bytes', () => {
    const encoder = createUntemplatedEncoder();
    const out = new Uint8Array(100);
    expect(untemplatedEncodeBegin(encoder, out, 0, out.length, 5)).toBe(0);
    for (const record of records) expect(untemplatedEncodeAppend(encoder, record)).toBe(0);
    const length = untemplatedEncodeFinish(encoder);
    expect(Buffer.from(out.subarray(0, length)).toString('hex')).toBe(Buffer.from(golden).toString('hex'));
  });

  it('decodes the annotated bytes back to the records', () => {
    expect(decodeFrame(golden, createDefaultRegistry())).toMatchObject({ ok: true, kind: 'untemplated', firstSeq: 5, records });
  });
});
