// The PC side's one seeded generator (mulberry32): small, fast, and good enough to place faults,
// pick torn lengths and drive simulations, so that every run replays from its seed.

/** Returns a generator of floats in [0, 1) that depends only on `seed`. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
