// Short seeded runs of the cloud fuzzers (the long ones: `npm run fuzz -- cloud-uplink --cases N`,
// `npm run fuzz -- cloud-http --cases N`): the uplink handler only ever answers with downlink
// types and stores nothing outside its templates; the HTTP API never answers 5xx.
import { describe, expect, it } from 'vitest';
import { fuzzAsync as fuzzHttp } from './fuzz/cloud-http.fuzz.ts';
import { fuzzAsync as fuzzUplink } from './fuzz/cloud-uplink.fuzz.ts';

describe('cloud fuzzers (seeded corpus)', () => {
  it('[SYNC-16] mutated and random sync messages get answers of downlink types, never a throw or garbage stored [seeds 1, 2]', async () => {
    for (const seed of [1, 2]) {
      const result = await fuzzUplink(seed, 250);
      expect(result.cases).toBe(250);
      // The mutations reach the handlers behind HELLO: events acknowledged, state acknowledged,
      // malformed messages and messages without a session refused.
      for (const code of ['0x81', '0x82', '0x84', 'error 2', 'error 5']) expect(result.codes[code] ?? 0, `${code} with seed ${seed}`).toBeGreaterThan(0);
    }
  }, 60_000);

  it('random requests to the HTTP API get 2xx or 4xx, never 5xx [seeds 1, 2]', async () => {
    for (const seed of [1, 2]) {
      const result = await fuzzHttp(seed, 600);
      expect(result.cases).toBe(600);
      for (const status of ['200', '400', '401', '404', '405']) expect(result.codes[status] ?? 0, `${status} with seed ${seed}`).toBeGreaterThan(0);
      expect(Object.keys(result.codes).filter((status) => Number(status) >= 500)).toEqual([]);
    }
  }, 60_000);
});
