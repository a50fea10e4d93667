/**
 * Exact linear assignment (docs/methods.md §7.1): given a square cost matrix C, find the permutation π
 * minimizing (or maximizing) Σ_i C[i, π(i)].
 *
 * The solver is a self-contained O(n³) Hungarian algorithm in its shortest-augmenting-path form
 * (Jonker–Volgenant / Kuhn–Munkres with row and column potentials), working in float64 on a
 * flat row-major copy of the matrix.
 *
 * Why not `hungarian-on3` (v0.3.1, a dependency of the project): checked against brute force
 * it minimizes correctly, but
 * - its `isProfit` (maximize) mode is wrong: it maps entries to `c − max` (and zeros to a
 *   forbidden sentinel) instead of `max − c`, so it minimizes again — 1654 of 2000 random
 *   n ≤ 7 matrices gave a non-optimal "maximum";
 * - any entry ≥ 2^30 is its "infeasible" sentinel: a row whose entries are all ≥ 2^30 is dropped
 *   and reported unassigned (−1), so large or negated costs need offsetting first;
 * - it takes arrays of arrays (cloned once more inside), not a flat Float64Array.
 * Maximization by negation plus a row offset would work around the first two, but a 60-line exact
 * solver with no sentinels is simpler to trust; the tests still cross-check it against
 * `hungarian-on3` on minimization.
 */

/** A square cost matrix: flat row-major (`data[i * cols + j]`) or an array of rows. */
export type CostMatrix =
  | { readonly rows: number; readonly cols: number; readonly data: Float64Array | readonly number[] }
  | readonly (readonly number[])[];

/** Options of {@link linearAssignment}. */
export interface AssignmentOptions {
  /** Maximize Σ C[i, π(i)] instead of minimizing it. Default false. */
  readonly maximize?: boolean;
}

/**
 * Solve the linear assignment problem on a square n×n matrix. Returns `perm` with `perm[i]` the
 * column assigned to row i (a permutation of 0..n−1). Exact for integer costs; for real costs the
 * optimum is found up to float64 rounding in the potentials. Ties are broken deterministically.
 * Throws on a non-square or ragged matrix, or on non-finite entries.
 */
export function linearAssignment(cost: CostMatrix, options: AssignmentOptions = {}): Int32Array {
  const { n, c } = toSquare(cost);
  if (options.maximize) {
    for (let k = 0; k < c.length; k++) c[k] = -(c[k] as number);
  }
  return solveMin(n, c);
}

/** Σ_i C[i, perm[i]] — the objective of an assignment. */
export function assignmentObjective(cost: CostMatrix, perm: ArrayLike<number>): number {
  const { n, c } = toSquare(cost);
  if (perm.length !== n) throw new Error(`assignment has length ${perm.length}, matrix is ${n}×${n}`);
  let s = 0;
  for (let i = 0; i < n; i++) s += c[i * n + (perm[i] as number)] as number;
  return s;
}

function toSquare(cost: CostMatrix): { n: number; c: Float64Array } {
  let rows: number;
  let cols: number;
  let c: Float64Array;
  if (Array.isArray(cost)) {
    const m = cost as readonly (readonly number[])[];
    rows = m.length;
    cols = rows === 0 ? 0 : (m[0] as readonly number[]).length;
    c = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const row = m[i] as readonly number[];
      if (row.length !== cols) {
        throw new Error(`cost matrix is ragged: row 0 has ${cols} entries, row ${i} has ${row.length}`);
      }
      for (let j = 0; j < cols; j++) c[i * cols + j] = row[j] as number;
    }
  } else {
    const m = cost as { rows: number; cols: number; data: Float64Array | readonly number[] };
    rows = m.rows;
    cols = m.cols;
    if (m.data.length !== rows * cols) {
      throw new Error(`cost matrix ${rows}×${cols} needs ${rows * cols} entries, got ${m.data.length}`);
    }
    c = Float64Array.from(m.data);
  }
  if (rows !== cols) {
    throw new Error(`linear assignment needs a square cost matrix, got ${rows}×${cols}`);
  }
  for (let k = 0; k < c.length; k++) {
    if (!Number.isFinite(c[k])) {
      throw new Error(`cost matrix entry (${Math.floor(k / cols)}, ${k % cols}) is not finite: ${c[k]}`);
    }
  }
  return { n: rows, c };
}

/**
 * Minimum-cost assignment by successive shortest augmenting paths with potentials u (rows) and
 * v (columns), 1-based with column 0 as the virtual start (the classic e-maxx formulation).
 * Each of the n phases adds one row and runs a Dijkstra-like scan in O(n²): O(n³) total.
 */
function solveMin(n: number, c: Float64Array): Int32Array {
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1); // p[j] = row matched to column j (1-based), 0 = free
  const way = new Int32Array(n + 1);
  const minv = new Float64Array(n + 1);
  const used = new Uint8Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Number.POSITIVE_INFINITY);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0] as number;
      const rowOff = (i0 - 1) * n - 1;
      const ui0 = u[i0] as number;
      let delta = Number.POSITIVE_INFINITY;
      let j1 = -1;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = (c[rowOff + j] as number) - ui0 - (v[j] as number);
        if (cur < (minv[j] as number)) {
          minv[j] = cur;
          way[j] = j0;
        }
        if ((minv[j] as number) < delta) {
          delta = minv[j] as number;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j] as number] = (u[p[j] as number] as number) + delta;
          v[j] = (v[j] as number) - delta;
        } else {
          minv[j] = (minv[j] as number) - delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0] as number;
      p[j0] = p[j1] as number;
      j0 = j1;
    } while (j0 !== 0);
  }
  const perm = new Int32Array(n);
  for (let j = 1; j <= n; j++) perm[(p[j] as number) - 1] = j - 1;
  return perm;
}
