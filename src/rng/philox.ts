/**
 * Philox4x32-10, the counter-based generator of Salmon et al., "Parallel random numbers: as easy as
 * 1, 2, 3" (SC 2011), bit-exact to the Random123 reference implementation (`philox4x32_R` with
 * R = 10). All arithmetic is 32-bit integer math (`Math.imul` and 16-bit splits for the high half of
 * the 64-bit product), so the output is identical on every machine and JavaScript engine.
 */

/** Round multipliers (Random123 `PHILOX_M4x32_0`, `PHILOX_M4x32_1`). */
const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
/** Weyl key increments (Random123 `PHILOX_W32_0`, `PHILOX_W32_1`: golden ratio, √3 − 1). */
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two unsigned 32-bit integers. */
export function mulhi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  // Every partial product is below 2^32 and every sum below 2^53: exact in doubles.
  const ll = al * bl;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + Math.floor(lh / 0x10000) + Math.floor(hl / 0x10000) + Math.floor(mid / 0x10000)) >>> 0;
}

/**
 * One Philox4x32 block: encrypt the 128-bit `counter` (four uint32 words) under the 64-bit `key` (two
 * uint32 words) with `rounds` rounds (10 is the standard, Crush-resistant choice).
 *
 * @param out - where the four output words are written (allocated when omitted).
 * @returns `out`, four uint32 words.
 */
export function philox4x32(
  counter: ArrayLike<number>,
  key: ArrayLike<number>,
  out: Uint32Array = new Uint32Array(4),
  rounds = 10,
): Uint32Array {
  let c0 = (counter[0] ?? 0) >>> 0;
  let c1 = (counter[1] ?? 0) >>> 0;
  let c2 = (counter[2] ?? 0) >>> 0;
  let c3 = (counter[3] ?? 0) >>> 0;
  let k0 = (key[0] ?? 0) >>> 0;
  let k1 = (key[1] ?? 0) >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}
