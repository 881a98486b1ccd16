// Operating errors of the codec [WIRE-24][WIRE-40][WIRE-41]: a record outside its template is
// refused naming record and field (nothing clamped); a bad frame gets exactly the code for what is
// wrong with it; a full buffer keeps the frame so far valid.
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../firmware/protocol/crc32.ts';
import { createFrameEncoder, frameEncodeAppend, frameEncodeBegin, frameEncodeFinish } from '../../firmware/protocol/frame.ts';
import { wireFrameBytesMax, wireRecordsPerFrameMax } from '../../firmware/protocol/limits.ts';
import type { WireValue } from '../../firmware/protocol/template.ts';
import { createDefaultRegistry, deviceStatusTemplate, powerMeterTemplate, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { untemplatedDecode } from '../../firmware/protocol/untemplated.ts';
import {
  wireErrorCount, wireErrorCrc, wireErrorDepth, wireErrorFrameSize, wireErrorFrameType, wireErrorFull, wireErrorRange,
  wireErrorTrailing, wireErrorTruncated, wireErrorType, wireErrorUnknownTemplate, wireErrorVersion, wireOk,
} from '../../firmware/protocol/wire-errors.ts';
import { decodeFrame, encodeRecordsToFrames, encodeUntemplatedFrames } from '../../firmware/protocol/wire-objects.ts';

const t0 = 1764201600000;
const good = { ts: t0, temp: 21.5, hum: 45, batt: 3950 };

function frameOf(records: object[]): Uint8Array {
  const encoded = encodeRecordsToFrames(telemetryTemplate, records);
  if (!encoded.ok) throw new Error(encoded.error.message);
  return encoded.frames[0];
}

function fixCrc(bytes: Uint8Array): Uint8Array {
  const end = bytes.length - 4;
  new DataView(bytes.buffer, bytes.byteOffset, bytes.length).setUint32(end, crc32(bytes, 0, end), true);
  return bytes;
}

describe('encoding refuses records outside their template [WIRE-24][WIRE-25]', () => {
  const cases: [object, number, RegExp][] = [
    [{ ...good, temp: 125.1 }, wireErrorRange, /^record 2 field temp: 125\.1 is out of range \(-40\.\.125 in steps of 0\.1\)$/],
    [{ ...good, temp: -40.06 }, wireErrorRange, /field temp: -40\.06 is out of range/],
    [{ ...good, hum: 45.5 }, wireErrorType, /^record 2 field hum: 45\.5 is not a valid uint$/],
    [{ ...good, hum: '45' }, wireErrorType, /field hum: "45" is not a valid uint/],
    [{ ...good, hum: -1 }, wireErrorRange, /field hum: -1 is out of range \(0\.\.100\)/],
    [{ ...good, batt: Number.NaN }, wireErrorType, /field batt: null is not a valid uint/],
    [{ ts: t0, temp: 20, hum: 45 }, wireErrorType, /^record 2 field batt: missing$/],
    [{ ...good, ts: -1000 }, wireErrorRange, /field ts: -1000 is out of range/],
    [{ ...good, colour: 'red' }, wireErrorType, /^record 2 field colour: not a field of template telemetry$/],
  ];
  for (const [record, code, message] of cases) {
    it(`${JSON.stringify(record)} -> ${message}`, () => {
      const result = encodeRecordsToFrames(telemetryTemplate, [good, record]);
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.error.code).toBe(code);
      expect(result.error.record).toBe(1);
      expect(result.error.message).toMatch(message);
    });
  }

  it('enum, string and bool values are checked too', () => {
    const meter = { ts: t0, voltage: 230, current: 1, power: 200, energy: 5, frequency: 50, pf: 0.9, temp: 30, state: 'running', relay: true };
    expect(encodeRecordsToFrames(powerMeterTemplate, [meter]).ok).toBe(true);
    const bad = encodeRecordsToFrames(powerMeterTemplate, [{ ...meter, state: 'sleeping' }]);
    expect(!bad.ok && bad.error.message).toBe('record 1 field state: "sleeping" is out of range (one of idle, running, overload, fault)');
    const notBool = encodeRecordsToFrames(powerMeterTemplate, [{ ...meter, relay: 1 }]);
    expect(!notBool.ok && notBool.error.message).toBe('record 1 field relay: 1 is not a valid bool');
  });

  it('on the device path the frame stays usable after a refused record, and names the field index', () => {
    const encoder = createFrameEncoder();
    const out = new Uint8Array(100);
    frameEncodeBegin(encoder, telemetryTemplate, out, 0, out.length, 0);
    expect(frameEncodeAppend(encoder, [t0, 21.5, 45, 3950])).toBe(wireOk);
    expect(frameEncodeAppend(encoder, [t0, 21.5, 101, 3950])).toBe(wireErrorRange);
    expect(encoder.errorField).toBe(2);
    expect(frameEncodeAppend(encoder, [t0 + 60000, 21.6, 46, 3950])).toBe(wireOk);
    const decoded = decodeFrame(out.slice(0, frameEncodeFinish(encoder)), createDefaultRegistry());
    expect(decoded.ok && decoded.records.length).toBe(2);
  });
});

describe('a full buffer ends the frame cleanly [WIRE-3]', () => {
  it('wireErrorFull leaves every record appended so far decodable, at every buffer size', () => {
    for (let size = 8; size <= 60; size++) {
      const encoder = createFrameEncoder();
      const out = new Uint8Array(size);
      if (frameEncodeBegin(encoder, telemetryTemplate, out, 0, size, 0) !== wireOk) continue;
      let appended = 0;
      for (let i = 0; i < 40; i++) {
        const code = frameEncodeAppend(encoder, [t0 + i * 60000, 21.5 + (i % 3) / 10, 45, 3950 - i]);
        if (code === wireErrorFull) break;
        expect(code).toBe(wireOk);
        appended++;
      }
      if (appended === 0) {
        expect(frameEncodeFinish(encoder)).toBe(wireErrorCount);
        continue;
      }
      const length = frameEncodeFinish(encoder);
      expect(length).toBeLessThanOrEqual(size);
      const decoded = decodeFrame(out.slice(0, length), createDefaultRegistry());
      expect(decoded.ok && decoded.records.length, `buffer of ${size}`).toBe(appended);
    }
  });

  it(`stops at wireRecordsPerFrameMax (${wireRecordsPerFrameMax}) records even with room left`, () => {
    const encoder = createFrameEncoder();
    const out = new Uint8Array(wireFrameBytesMax);
    frameEncodeBegin(encoder, deviceStatusTemplate, out, 0, out.length, 0);
    const status: WireValue[] = [t0, true, t0, 'ok', 0, 0, 0, 0, 0, 0, 1, 100];
    let appended = 0;
    while (frameEncodeAppend(encoder, status) === wireOk) appended++;
    expect(appended).toBe(wireRecordsPerFrameMax);
  });
});

describe('decoding reports what is wrong with a frame [WIRE-40][WIRE-41]', () => {
  const registry = createDefaultRegistry();
  const frame = frameOf([good, { ...good, ts: t0 + 60000, temp: 21.7 }]);

  function codeOf(bytes: Uint8Array): number {
    const decoded = decodeFrame(bytes, registry);
    return decoded.ok ? wireOk : decoded.code;
  }

  it('intact: ok', () => expect(codeOf(frame)).toBe(wireOk));
  it('one bit flipped anywhere: crc mismatch', () => {
    for (let i = 0; i < frame.length - 4; i++) {
      const bytes = frame.slice();
      bytes[i] ^= 0x10;
      const code = codeOf(bytes);
      expect([wireErrorCrc, wireErrorFrameType, wireErrorVersion]).toContain(code);
    }
  });
  it('cut short: truncated or crc mismatch, never ok', () => {
    for (let length = 0; length < frame.length; length++) {
      expect([wireErrorTruncated, wireErrorCrc]).toContain(codeOf(frame.slice(0, length)));
    }
  });
  it('unknown template hash: named in the message', () => {
    const bytes = frame.slice();
    bytes[2] ^= 0xff;
    const decoded = decodeFrame(fixCrc(bytes), registry);
    expect(decoded.ok).toBe(false);
    if (decoded.ok) return;
    expect(decoded.code).toBe(wireErrorUnknownTemplate);
    expect(decoded.message).toBe('unknown template hash 235ac3e8: the device and the cloud do not share this template');
  });
  it('version 2: unsupported version', () => {
    const bytes = frame.slice();
    bytes[1] = 2;
    expect(codeOf(fixCrc(bytes))).toBe(wireErrorVersion);
  });
  it('type byte 9: unknown frame type', () => {
    const bytes = frame.slice();
    bytes[0] = 9;
    expect(codeOf(bytes)).toBe(wireErrorFrameType);
  });
  it('count 0, or more records than the bits hold: bad count or truncated', () => {
    const zero = frame.slice();
    zero[6] = 0;
    expect(codeOf(fixCrc(zero))).toBe(wireErrorCount);
    const more = frame.slice();
    more[6] = 200;
    expect([wireErrorTruncated, wireErrorRange]).toContain(codeOf(fixCrc(more)));
  });
  it('an extra byte before the CRC: trailing bytes', () => {
    const bytes = new Uint8Array(frame.length + 1);
    bytes.set(frame.subarray(0, frame.length - 4));
    expect(codeOf(fixCrc(bytes))).toBe(wireErrorTrailing);
  });
  it(`longer than wireFrameBytesMax (${wireFrameBytesMax}): frame too large`, () => {
    expect(codeOf(new Uint8Array(wireFrameBytesMax + 1).fill(1))).toBe(wireErrorFrameSize);
  });
  it('a value decoded outside its declared range: out of range', () => {
    // hum = 100 (the template's max) is Exp-Golomb(100): 6 zeros, then 101 = 0b1100101. Flipping
    // its second-lowest bit makes 0b1100111 = 103, value 102: a valid code for a value the
    // template cannot hold. (Bits start after 8 header bytes and 5 of base time; temp takes 19.)
    const encodedMax = frameOf([{ ...good, hum: 100 }]);
    expect(codeOf(encodedMax)).toBe(wireOk);
    const bytes = encodedMax.slice();
    const bit = 8 * 13 + 19 + 6 + 5;
    bytes[Math.floor(bit / 8)] ^= 0x80 >> bit % 8;
    expect(codeOf(fixCrc(bytes))).toBe(wireErrorRange);
  });

  it('untemplated: too deep, and counts that lie, are refused before allocation [WIRE-53]', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 8; i++) deep = [deep];
    const refused = encodeUntemplatedFrames([deep]);
    expect(!refused.ok && refused.error.code).toBe(wireErrorDepth);
    // An array claiming 2^40 items in a 12-byte frame.
    const bytes = fixCrc(new Uint8Array([2, 1, 1, 0, 0xc9, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0, 0, 0]));
    expect(untemplatedDecode(bytes, 0, bytes.length).code).toBe(wireErrorTruncated);
  });
});
