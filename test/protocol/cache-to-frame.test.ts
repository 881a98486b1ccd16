// The device's path from cache to wire [WIRE-30][WIRE-33]: records stored one by one with
// encodeRecord (as the event cache holds them) are appended to batch frames straight from their
// bytes until a frame is full, and the cloud gets every record back in order.
import { describe, expect, it } from 'vitest';
import { createFrameEncoder, frameEncodeAppendRecord, frameEncodeBegin, frameEncodeFinish } from '../../firmware/protocol/frame.ts';
import { encodeRecord, recordErrorState } from '../../firmware/protocol/record.ts';
import type { WireValue } from '../../firmware/protocol/template.ts';
import { createDefaultRegistry, deviceStatusTemplate, telemetryTemplate } from '../../firmware/protocol/templates/index.ts';
import { wireErrorFull, wireErrorRange, wireErrorTruncated, wireOk } from '../../firmware/protocol/wire-errors.ts';
import { decodeFrame } from '../../firmware/protocol/wire-objects.ts';
import { referenceTelemetryStream } from './streams.ts';

describe('cached records become frames [WIRE-33]', () => {
  it('drains 500 cached telemetry records into 300-byte frames, all decoded in order', () => {
    const cache = new Uint8Array(8192);
    const offsets: number[] = [];
    let end = 0;
    const records = referenceTelemetryStream(4, 500);
    for (const record of records) {
      offsets.push(end);
      end = encodeRecord(telemetryTemplate, [record.ts, record.temp, record.hum, record.batt], cache, end, cache.length);
      expect(end).toBeGreaterThan(0);
    }
    offsets.push(end);
    expect(end / records.length).toBe(10);

    const encoder = createFrameEncoder();
    const frame = new Uint8Array(300);
    const registry = createDefaultRegistry();
    const received: unknown[] = [];
    let next = 0;
    let frames = 0;
    while (next < records.length) {
      expect(frameEncodeBegin(encoder, telemetryTemplate, frame, 0, frame.length, next)).toBe(wireOk);
      let code = wireOk;
      while (next < records.length && (code = frameEncodeAppendRecord(encoder, cache, offsets[next], offsets[next + 1])) === wireOk) next++;
      if (next < records.length) expect(code).toBe(wireErrorFull);
      const length = frameEncodeFinish(encoder);
      expect(length).toBeLessThanOrEqual(300);
      const decoded = decodeFrame(frame.slice(0, length), registry);
      if (!decoded.ok) throw new Error(decoded.message);
      expect(decoded.firstSeq).toBe(received.length);
      received.push(...decoded.records);
      frames++;
    }
    expect(received).toEqual(records);
    expect(frames).toBeLessThanOrEqual(3);
  });

  it('a damaged cached record is reported, not sent', () => {
    const encoder = createFrameEncoder();
    const frame = new Uint8Array(100);
    frameEncodeBegin(encoder, telemetryTemplate, frame, 0, frame.length, 0);
    const cached = new Uint8Array([0x80, 0xa9, 0x9e, 0xc9, 0x06, 0xe7, 0x04, 0x7f /* hum 127 > 100 */, 0xee, 0x1e]);
    expect(frameEncodeAppendRecord(encoder, cached, 0, cached.length)).toBe(wireErrorRange);
    expect(frameEncodeAppendRecord(encoder, cached, 0, 4)).toBe(wireErrorTruncated);
    expect(encoder.count).toBe(0);
  });

  it('records with enums, bools and several timestamps (device-status) go the same way; bad fields are named', () => {
    const status: WireValue[] = [1764201600000, true, 1764201000000, 'ok', 12, 120, 600, 0, 1, 0, 7, 3600];
    const cache = new Uint8Array(64);
    const length = encodeRecord(deviceStatusTemplate, status, cache, 0, cache.length);
    expect(length).toBeGreaterThan(0);
    const encoder = createFrameEncoder();
    const frame = new Uint8Array(200);
    frameEncodeBegin(encoder, deviceStatusTemplate, frame, 0, frame.length, 9);
    expect(frameEncodeAppendRecord(encoder, cache, 0, length)).toBe(wireOk);
    const decoded = decodeFrame(frame.slice(0, frameEncodeFinish(encoder)), createDefaultRegistry());
    expect(decoded.ok && decoded.records[0]).toEqual(Object.fromEntries(deviceStatusTemplate.fields.map((f, i) => [f.name, status[i]])));
    expect(encodeRecord(deviceStatusTemplate, [...status.slice(0, 3), 'asleep', ...status.slice(4)], cache, 0, cache.length)).toBe(wireErrorRange);
    expect(recordErrorState.field).toBe(3);
  });
});
