/** Validation of dataset spec fields, with messages naming the field, and the error of bad data. */
import { InputError } from '../util/errors.js';

/**
 * Bad data or a bad dataset spec: an unreadable or malformed data file, a missing or duplicated
 * column, non-finite values, labels beyond the classes, a single class. Bad input: exit code 2.
 */
export class DataError extends InputError {
  override name = 'DataError';
}

/** Throw unless `value` is an integer ≥ `min`. */
export function checkInt(field: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new DataError(`${field} must be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}

/** Throw unless `value` is a finite number ≥ 0. */
export function checkNonNegative(field: string, value: number): number {
  if (!Number.isFinite(value) || value < 0)
    throw new DataError(`${field} must be a finite number ≥ 0, got ${value}`);
  return value;
}

/** Throw unless `value` is in [0, 1). */
export function checkFraction(field: string, value: number): number {
  if (!(value >= 0 && value < 1)) throw new DataError(`${field} must be in [0, 1), got ${value}`);
  return value;
}
