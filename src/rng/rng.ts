/**
 * The project's random number generator: Philox4x32-10 in counter mode with named, splittable
 * streams. A generator is a 64-bit key plus a draw position; block j of four uint32 words is
 * philox4x32([j mod 2^32, ⌊j / 2^32⌋, 0, 0], key). Every value is therefore a function of
 * (seed, stream path, draw index) only, and identical on every machine.
 *
 * Streams the project uses under a run's seed: `init` (weights), `data` (dataset generation, splits
 * and batch order), `perturb` (twin perturbations), `eval` (evaluation subsets, random directions).
 */
import { deriveKey, type PhiloxKey } from './derive.js';
import { philox4x32 } from './philox.js';

const TWO_32 = 0x100000000;
const TWO_53 = 2 ** 53;

/** A deterministic Philox4x32-10 generator (see the module comment). */
export class Rng {
  /** The 64-bit key, as two uint32 words. */
  readonly key: PhiloxKey;
  /** Index of the next 128-bit block. */
  private block = 0;
  private readonly buf = new Uint32Array(4);
  /** Next unread word of `buf` (4 = empty). */
  private pos = 4;
  /** Second Box–Muller deviate of the last pair, if not yet returned. */
  private spare: number | undefined;

  private constructor(key: PhiloxKey) {
    this.key = [key[0] >>> 0, key[1] >>> 0];
  }

  /** The root generator of a seed: the key is the seed itself (low word, high word). Seeds are
   * integers in [0, 2^53). */
  static fromSeed(seed: number): Rng {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new Error(`seed must be an integer in [0, 2^53), got ${seed}`);
    }
    return new Rng([seed >>> 0, Math.floor(seed / TWO_32) >>> 0]);
  }

  /** A generator with an explicit key, at draw index 0. */
  static fromKey(key: PhiloxKey): Rng {
    return new Rng(key);
  }

  /**
   * An independent child generator for stream (`name`, ...`ids`), starting at draw 0. The child key
   * depends on this generator's key only (not on how many values were drawn), via {@link deriveKey}.
   * Chain calls for paths: `rng.stream('data', epoch)`, `rng.stream('init').stream('dense0.weight')`.
   */
  stream(name: string, ...ids: number[]): Rng {
    return new Rng(deriveKey(this.key, name, ids));
  }

  /** Next uniform uint32. */
  uint32(): number {
    if (this.pos === 4) {
      philox4x32([this.block >>> 0, Math.floor(this.block / TWO_32), 0, 0], this.key, this.buf);
      this.block++;
      this.pos = 0;
    }
    return this.buf[this.pos++] as number;
  }

  /** Uniform double in [0, 1) with 53 random bits: (27 bits of one word · 2^26 + 26 bits of the next) / 2^53. */
  uniform(): number {
    const a = this.uint32() >>> 5;
    const b = this.uint32() >>> 6;
    return (a * 67108864 + b) / TWO_53;
  }

  /**
   * Standard normal deviate by the Box–Muller transform: from u1 = 1 − uniform() ∈ (0, 1] and
   * u2 = uniform(), r = √(−2 ln u1) gives r·cos(2πu2) (returned) and r·sin(2πu2) (kept and returned by
   * the next call). Each pair consumes four uint32 words.
   */
  normal(): number {
    const s = this.spare;
    if (s !== undefined) {
      this.spare = undefined;
      return s;
    }
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * u2;
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }

  /** Fill `out` with N(0, std²) deviates (successive {@link normal} draws, scaled); returns `out`. */
  fillNormal<T extends Float32Array | Float64Array>(out: T, std = 1): T {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
    return out;
  }

  /** Fill `out` with lo + (hi − lo)·uniform() (in [lo, hi) before any rounding to float32); returns `out`. */
  fillUniform<T extends Float32Array | Float64Array>(out: T, lo: number, hi: number): T {
    const w = hi - lo;
    for (let i = 0; i < out.length; i++) out[i] = lo + w * this.uniform();
    return out;
  }

  /**
   * Unbiased integer in [0, n), n a positive safe integer, by rejection: for n ≤ 2^32 draw a uint32
   * and reject values ≥ 2^32 − (2^32 mod n); above, the same with 53-bit draws.
   */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1)
      throw new Error(`int(n): n must be a positive safe integer, got ${n}`);
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n);
      for (;;) {
        const u = this.uint32();
        if (u < limit) return u % n;
      }
    }
    const limit = TWO_53 - (TWO_53 % n);
    for (;;) {
      const u = this.uniform() * TWO_53;
      if (u < limit) return u % n;
    }
  }

  /** A uniformly random permutation of 0..n−1 (Fisher–Yates: for i = n−1 down to 1, swap i with int(i + 1)). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i] as number;
      p[i] = p[j] as number;
      p[j] = t;
    }
    return p;
  }
}
