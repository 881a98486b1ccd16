// Randomness, injected so that every run replays from its seed.

export interface Random {
  /** A uniformly distributed integer in [0, 2^32). */
  nextUint32(): number;
}
