/** Option checks and error text shared by the benchmarks. */

/** Throw `${name} must be a positive integer, got …` unless `value` is an integer ≥ 1. */
export function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got ${value}`);
}

/** The message of a thrown value: `err.message` for an Error, else `String(err)`. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
