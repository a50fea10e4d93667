/**
 * Key derivation for named streams: a child key is a Philox-based hash of the parent key, a stream
 * name and integer ids. The construction (Matyas–Meyer–Oseas chaining with Philox as the block
 * cipher) is:
 *
 * 1. The message is a list of uint32 words: the tag `0x7374726d` ('strm'), the UTF-8 byte length of
 *    the name, the name's UTF-8 bytes packed little-endian four to a word (last word zero-padded),
 *    the number of ids, then each id as two words (low 32 bits, high 21 bits).
 * 2. The message is cut into blocks of two words (the last zero-padded). Starting from k = parent
 *    key, block i = (m0, m1) updates k ← first two words of philox4x32([m0, m1, i, 0x6b657973], k)
 *    XOR (m0, m1).
 * 3. The final k is the child key.
 *
 * The length prefixes make the encoding injective, so distinct (name, ids) give unrelated keys.
 */
import { philox4x32 } from './philox.js';

/** A Philox key: two uint32 words. */
export type PhiloxKey = readonly [number, number];

const STREAM_TAG = 0x7374726d;
const BLOCK_TAG = 0x6b657973;

/** Encode a stream name and ids as the uint32 message words described in the module comment. */
export function streamMessage(name: string, ids: readonly number[]): number[] {
  const bytes = new TextEncoder().encode(name);
  const words = [STREAM_TAG, bytes.length];
  for (let i = 0; i < bytes.length; i += 4) {
    words.push(
      ((bytes[i] ?? 0) |
        ((bytes[i + 1] ?? 0) << 8) |
        ((bytes[i + 2] ?? 0) << 16) |
        ((bytes[i + 3] ?? 0) << 24)) >>>
        0,
    );
  }
  words.push(ids.length);
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0) {
      throw new Error(`stream '${name}': ids must be non-negative safe integers, got ${id}`);
    }
    words.push(id >>> 0, Math.floor(id / 0x100000000) >>> 0);
  }
  return words;
}

/** The key of stream (`name`, ...`ids`) under `parent` (see the module comment). */
export function deriveKey(parent: PhiloxKey, name: string, ids: readonly number[]): PhiloxKey {
  const msg = streamMessage(name, ids);
  const out = new Uint32Array(4);
  let k0 = parent[0];
  let k1 = parent[1];
  for (let i = 0; i * 2 < msg.length; i++) {
    const m0 = msg[2 * i] ?? 0;
    const m1 = msg[2 * i + 1] ?? 0;
    philox4x32([m0, m1, i, BLOCK_TAG], [k0, k1], out);
    k0 = ((out[0] as number) ^ m0) >>> 0;
    k1 = ((out[1] as number) ^ m1) >>> 0;
  }
  return [k0, k1];
}
