/** Validation of dataset spec fields, with messages naming the field. */

/** Throw unless `value` is an integer ≥ `min`. */
export function checkInt(field: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${field} must be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}

/** Throw unless `value` is a finite number ≥ 0. */
export function checkNonNegative(field: string, value: number): number {
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${field} must be a finite number ≥ 0, got ${value}`);
  return value;
}

/** Throw unless `value` is in [0, 1). */
export function checkFraction(field: string, value: number): number {
  if (!(value >= 0 && value < 1)) throw new Error(`${field} must be in [0, 1), got ${value}`);
  return value;
}
