/** Canonical JSON and the config hashes that key every output (runs, measurements, embeddings). */
import { createHash } from 'node:crypto';

/** Canonical JSON (sorted keys) so that equal specs hash equally. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 (hex) of the canonical JSON of `value`: equal configurations hash equally. */
export function configHash(value: unknown): string {
  return createHash('sha256').update(canonical(value)).digest('hex');
}
