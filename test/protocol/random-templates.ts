// fast-check arbitraries for the codec's property tests and seeded generators for the fuzzer:
// random valid templates and records that fit them, with the values already on their resolution.
import fc from 'fast-check';
import { checkTemplateDefinition } from '../../firmware/protocol/template-check.ts';
import { defineTemplate, dequantize, fieldInfo, quantize, type FieldDefinition, type Template, type WireValue } from '../../firmware/protocol/template.ts';

const resolutions = [1, 0.5, 0.25, 0.1, 0.01, 0.001, 2.5, 5];

export const fieldDefinitionArbitrary: fc.Arbitrary<Omit<FieldDefinition, 'name'>> = fc.oneof(
  fc.constant({ type: 'bool' as const }),
  fc.constant({ type: 'f32' as const }),
  fc.tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.integer({ min: 0, max: 2 ** 40 })).map(([min, span]) => ({ type: 'uint' as const, min, max: min + span })),
  fc.constant({ type: 'uint' as const }),
  fc.constant({ type: 'int' as const }),
  fc.tuple(fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 41 })).map(([min, span]) => ({ type: 'int' as const, min, max: min + span })),
  fc.tuple(fc.constantFrom(...resolutions), fc.integer({ min: -100_000, max: 100_000 }), fc.integer({ min: 0, max: 1_000_000 })).map(([resolution, minSteps, spanSteps]) => ({
    type: 'fixed' as const,
    resolution,
    min: resolution >= 1 ? minSteps * resolution : minSteps / Math.round(1 / resolution),
    max: resolution >= 1 ? (minSteps + spanSteps) * resolution : (minSteps + spanSteps) / Math.round(1 / resolution),
  })),
  fc.integer({ min: 1, max: 20 }).map((count) => ({ type: 'enum' as const, values: Array.from({ length: count }, (_, i) => `v${i}`) })),
  fc.integer({ min: 1, max: 40 }).map((maxLength) => ({ type: 'string' as const, maxLength })),
  fc.constantFrom(1, 10, 1000, 60000).map((resolutionMs) => ({ type: 'timestamp' as const, resolutionMs })),
);

export const templateArbitrary: fc.Arbitrary<Template> = fc
  .tuple(fc.array(fieldDefinitionArbitrary, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 255 }), fc.integer({ min: 1, max: 9 }))
  .map(([fields, id, version]) => {
    const definition = { name: `random-${id}`, id, version, fields: fields.map((field, i) => ({ ...field, name: `f${i}` })) };
    const problem = checkTemplateDefinition(definition);
    if (problem !== null) throw new Error(problem);
    return defineTemplate(definition);
  });

function byteString(maxLength: number): fc.Arbitrary<string> {
  return fc.array(fc.integer({ min: 0, max: 255 }), { maxLength }).map((codes) => String.fromCharCode(...codes));
}

/** A value of `field`, anywhere in its range, already a multiple of its resolution. */
export function valueArbitrary(template: Template, index: number): fc.Arbitrary<WireValue> {
  const field = fieldInfo(template, index);
  switch (field.typeName) {
    case 'bool':
      return fc.boolean();
    case 'f32':
      return fc.float({ noNaN: true, noDefaultInfinity: true }).map((value) => (Object.is(value, -0) ? 0 : value));
    case 'enum':
      return fc.constantFrom(...field.labels);
    case 'string':
      return byteString(field.maxLength);
    default:
      return fc.integer({ min: 0, max: 2 ** 31 }).chain((seed) =>
        fc.constantFrom(field.minQ, field.maxQ, field.minQ + (seed % Math.max(1, Math.min(field.maxQ - field.minQ + 1, 1000))), field.minQ + Math.floor(((field.maxQ - field.minQ) * seed) / 2 ** 31)),
      ).map((q) => dequantize(template, index, q));
  }
}

/** Records for `template`: mostly small steps from the previous one (as real streams), sometimes jumps. */
export function recordsArbitrary(template: Template, maxLength: number): fc.Arbitrary<WireValue[][]> {
  const record = fc.tuple(...template.fields.map((_, i) => valueArbitrary(template, i)));
  return fc.array(fc.tuple(record, fc.boolean(), fc.integer({ min: -3, max: 3 })), { minLength: 1, maxLength }).map((steps) => {
    const records: WireValue[][] = [];
    for (const [fresh, jump, delta] of steps) {
      const previous = records[records.length - 1];
      if (previous === undefined || jump) {
        records.push([...fresh]);
        continue;
      }
      records.push(
        template.fields.map((_, i) => {
          const field = fieldInfo(template, i);
          if (field.typeName === 'bool' || field.typeName === 'f32' || field.typeName === 'string' || field.typeName === 'enum') return fresh[i];
          const q = quantize(template, i, previous[i]) + delta;
          return q >= field.minQ && q <= field.maxQ ? dequantize(template, i, q) : previous[i];
        }),
      );
    }
    return records;
  });
}

/** What decoding must give back for `value`: the value on the field's resolution. */
export function expectedValue(template: Template, index: number, value: WireValue): WireValue {
  const field = fieldInfo(template, index);
  if (field.typeName === 'bool' || field.typeName === 'string' || field.typeName === 'f32' || field.typeName === 'enum') return value;
  return dequantize(template, index, quantize(template, index, value));
}
