// Property-based round trips [WIRE-3][WIRE-24][WIRE-30][WIRE-50]: random templates, random
// records on them, encoded and decoded again must give the same values (exactly, since the
// values are on their resolution), however frames are split.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createFrameDecoder, createFrameEncoder, frameDecodeBegin, frameDecodeNext, frameEncodeAppend, frameEncodeBegin, frameEncodeFinish } from '../../firmware/protocol/frame.ts';
import { decodeRecord, decodeValue, encodeRecord, encodeValue } from '../../firmware/protocol/record.ts';
import { createTemplateRegistry, dequantize, fieldInfo, quantize, type WireValue } from '../../firmware/protocol/template.ts';
import { createDefaultRegistry } from '../../firmware/protocol/templates/index.ts';
import { decodeFrame, encodeRecordsToFrames, encodeUntemplatedFrames, valuesToRecord } from '../../firmware/protocol/wire-objects.ts';
import { expectedValue, recordsArbitrary, templateArbitrary, valueArbitrary } from './random-templates.ts';

const runs = { numRuns: 150, seed: 20261127 };

describe('round trips over random templates [WIRE-3][WIRE-24]', () => {
  it('batch frame: decode(encode(records)) gives every value back on its resolution', () => {
    fc.assert(
      fc.property(templateArbitrary.chain((template) => fc.tuple(fc.constant(template), recordsArbitrary(template, 40))), ([template, records]) => {
        const encoder = createFrameEncoder();
        const decoder = createFrameDecoder(createTemplateRegistry([template]));
        const buffer = new Uint8Array(960);
        let next = 0;
        while (next < records.length) {
          expect(frameEncodeBegin(encoder, template, buffer, 0, buffer.length, next)).toBe(0);
          const first = next;
          while (next < records.length && frameEncodeAppend(encoder, records[next]) === 0) next++;
          expect(next).toBeGreaterThan(first);
          const length = frameEncodeFinish(encoder);
          expect(frameDecodeBegin(decoder, buffer, 0, length)).toBe(0);
          expect(decoder.firstSeq).toBe(first);
          expect(decoder.count).toBe(next - first);
          const values: WireValue[] = [];
          for (let r = first; r < next; r++) {
            expect(frameDecodeNext(decoder, values)).toBe(0);
            expect(values.slice(0, template.fields.length)).toEqual(records[r].map((value, i) => expectedValue(template, i, value)));
          }
        }
      }),
      runs,
    );
  });

  it('frames split at any size carry all records, in order, with consecutive sequence numbers', () => {
    fc.assert(
      fc.property(
        templateArbitrary.chain((template) => fc.tuple(fc.constant(template), recordsArbitrary(template, 60), fc.integer({ min: 120, max: 960 }))),
        ([template, byteRecords, frameBytesMax]) => {
          // Objects carry Unicode text, sent as UTF-8: keep to ASCII so byte lengths stay put.
          const records = byteRecords.map((values) => values.map((value) => (typeof value === 'string' ? value.replace(/[\x80-\xff]/g, 'u') : value)));
          const objects = records.map((values) => valuesToRecord(template, values));
          const encoded = encodeRecordsToFrames(template, objects, { frameBytesMax, firstSeq: 100 });
          if (!encoded.ok) {
            // Only a record too big for the smallest frames may fail, and it must say so.
            expect(encoded.error.message).toMatch(/does not fit/);
            return;
          }
          const registry = createTemplateRegistry([template]);
          const decoded: unknown[] = [];
          let seq = 100;
          for (const frame of encoded.frames) {
            expect(frame.length).toBeLessThanOrEqual(frameBytesMax);
            const result = decodeFrame(frame, registry);
            if (!result.ok) throw new Error(result.message);
            expect(result.firstSeq).toBe(seq);
            seq += result.records.length;
            decoded.push(...result.records);
          }
          expect(decoded).toEqual(records.map((values) => valuesToRecord(template, values.map((value, i) => expectedValue(template, i, value)))));
        },
      ),
      { ...runs, numRuns: 60 },
    );
  });

  it('single records and single values: decode(encode(x)) = x [WIRE-30][WIRE-31]', () => {
    fc.assert(
      fc.property(templateArbitrary.chain((template) => fc.tuple(fc.constant(template), recordsArbitrary(template, 1))), ([template, [record]]) => {
        const bytes = new Uint8Array(2000);
        const end = encodeRecord(template, record, bytes, 0, bytes.length);
        expect(end).toBeGreaterThan(0);
        const values: WireValue[] = [];
        expect(decodeRecord(template, bytes, 0, end, values)).toBe(end);
        expect(values).toEqual(record.map((value, i) => expectedValue(template, i, value)));
        // A cut record is reported, never misread.
        if (end > 1) expect(decodeRecord(template, bytes, 0, end - 1, values)).toBeLessThan(0);
        // Field by field, as the state store uses it.
        const single = new Uint8Array(300);
        for (let i = 0; i < template.fields.length; i++) {
          const valueEnd = encodeValue(template, i, record[i], single, 0, single.length);
          const into: WireValue[] = [];
          const cursor = { position: 0 };
          expect(decodeValue(template, i, single, cursor, valueEnd, into, 0)).toBe(0);
          expect(cursor.position).toBe(valueEnd);
          expect(into[0]).toEqual(expectedValue(template, i, record[i]));
        }
      }),
      runs,
    );
  });

  it('quantize/dequantize is exact on the resolution and never moves a value by more than half a step [WIRE-24]', () => {
    fc.assert(
      fc.property(templateArbitrary.chain((template) => fc.tuple(fc.constant(template), fc.nat({ max: template.fields.length - 1 }))).chain(([template, i]) => fc.tuple(fc.constant(template), fc.constant(i), valueArbitrary(template, i))), ([template, i, value]) => {
        const field = fieldInfo(template, i);
        const q = quantize(template, i, value);
        expect(quantize(template, i, dequantize(template, i, q))).toBe(q);
        if (typeof value === 'number' && field.typeName !== 'f32') {
          const step = field.typeName === 'timestamp' ? field.divider : field.divider === 0 ? 1 / field.multiplier : field.divider;
          expect(Math.abs((dequantize(template, i, q) as number) - value)).toBeLessThanOrEqual(step / 2 + 1e-9 * Math.abs(value));
        }
      }),
      runs,
    );
  });
});

/** JSON-like values the untemplated fallback carries (no -0, which JSON cannot tell from 0). */
const looseValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => (Object.is(value, -0) ? 0 : value)),
    fc.string({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

describe('round trips of untemplated records [WIRE-50]', () => {
  it('decode(encode(records)) = records, text as Unicode', () => {
    fc.assert(
      fc.property(fc.array(looseValue, { minLength: 1, maxLength: 8 }), (records) => {
        const encoded = encodeUntemplatedFrames(records);
        if (!encoded.ok) {
          expect(encoded.error.message).toMatch(/does not fit|nesting too deep/);
          return;
        }
        const decoded: unknown[] = [];
        for (const frame of encoded.frames) {
          const result = decodeFrame(frame, createDefaultRegistry());
          if (!result.ok) throw new Error(result.message);
          decoded.push(...result.records);
        }
        expect(decoded).toEqual(JSON.parse(JSON.stringify(records)));
      }),
      runs,
    );
  });
});
