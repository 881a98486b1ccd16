// A short seeded run of the wire fuzzer [WIRE-40] (the long one: `npm run fuzz -- wire --cases
// 1000000`), plus checks that the fuzzer reaches deep into the decoders, not just the CRC check.
import { describe, expect, it } from 'vitest';
import { fuzz } from './wire.fuzz.ts';

describe('wire decoder fuzz [WIRE-40]', () => {
  it('random and mutated frames only ever get a wire code back [seeds 1..3]', () => {
    for (const seed of [1, 2, 3]) {
      const result = fuzz(seed, 15_000);
      expect(result.cases).toBe(15_000);
      // The mutations must reach the record decoders (CRC fixed up), not stop at the header.
      for (const name of ['ok', 'crc mismatch', 'truncated', 'value out of range', 'unknown template hash', 'trailing bytes', 'over-long code']) {
        expect(result.codes[name] ?? 0, `${name} with seed ${seed}`).toBeGreaterThan(0);
      }
      expect(result.slowestCaseMs).toBeLessThan(500);
    }
  });
});
