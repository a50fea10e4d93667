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
  /**
   * 'jv' (default): Jonker–Volgenant (column reduction, reduction transfer and two rounds of
   * augmenting row reduction before shortest augmenting paths), ≈5–10× faster on dense real
   * matrices; 'hungarian': the plain shortest-augmenting-path Hungarian algorithm (the previous
   * solver, kept as the reference). Both are exact; they can differ only between optimal
   * assignments of equal cost (ties).
   */
  readonly solver?: 'jv' | 'hungarian';
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
  const solver = options.solver ?? 'jv';
  if (solver === 'hungarian') return solveMin(n, c);
  if (solver !== 'jv') throw new Error(`unknown assignment solver '${String(solver)}'`);
  return solveJv(n, c);
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

/**
 * Minimum-cost assignment by Jonker & Volgenant (1987), "A shortest augmenting path algorithm for
 * dense and sparse linear assignment problems" (their LAPJV, dense form): column reduction,
 * reduction transfer, two rounds of augmenting row reduction, then one shortest augmenting path
 * (Dijkstra on reduced costs with column prices v) per row still free. Exact; O(n³) worst case, but
 * the initialisation leaves few free rows on dense real matrices.
 */
function solveJv(n: number, c: Float64Array): Int32Array {
  const x = new Int32Array(n).fill(-1); // column of each row
  if (n === 0) return x;
  if (n === 1) {
    x[0] = 0;
    return x;
  }
  const y = new Int32Array(n).fill(-1); // row of each column
  const v = new Float64Array(n);
  // Column reduction: each column's price is its minimum; the row of that minimum takes it if free.
  const matches = new Int32Array(n);
  for (let j = n - 1; j >= 0; j--) {
    let min = c[j] as number;
    let imin = 0;
    for (let i = 1; i < n; i++) {
      const h = c[i * n + j] as number;
      if (h < min) {
        min = h;
        imin = i;
      }
    }
    v[j] = min;
    if (++(matches[imin] as number) === 1) {
      x[imin] = j;
      y[j] = imin;
    } else {
      y[j] = -1;
    }
  }
  // Reduction transfer: rows with one match lower their column's price by their best alternative.
  const free = new Int32Array(n);
  let numFree = 0;
  for (let i = 0; i < n; i++) {
    if (x[i] === -1) {
      free[numFree++] = i;
    } else if (matches[i] === 1) {
      const j1 = x[i] as number;
      const o = i * n;
      let min = Number.POSITIVE_INFINITY;
      for (let j = 0; j < n; j++) {
        if (j === j1) continue;
        const h = (c[o + j] as number) - (v[j] as number);
        if (h < min) min = h;
      }
      v[j1] = (v[j1] as number) - min;
    }
  }
  // Augmenting row reduction, twice. A row displaced from a column whose price just dropped is
  // retried at once; the retries are capped (float rounding could otherwise make them crawl), past
  // the cap it waits for the next round or the augmentation like any other free row.
  for (let round = 0; round < 2; round++) {
    let retries = 4 * n;
    let k = 0;
    const prevFree = numFree;
    numFree = 0;
    while (k < prevFree) {
      const i = free[k++] as number;
      const o = i * n;
      let umin = (c[o] as number) - (v[0] as number);
      let j1 = 0;
      let j2 = -1;
      let usubmin = Number.POSITIVE_INFINITY;
      for (let j = 1; j < n; j++) {
        const h = (c[o + j] as number) - (v[j] as number);
        if (h < usubmin) {
          if (h >= umin) {
            usubmin = h;
            j2 = j;
          } else {
            usubmin = umin;
            umin = h;
            j2 = j1;
            j1 = j;
          }
        }
      }
      let i0 = y[j1] as number;
      if (umin < usubmin) {
        v[j1] = (v[j1] as number) - (usubmin - umin);
      } else if (i0 >= 0) {
        j1 = j2;
        i0 = y[j1] as number;
      }
      if (i0 >= 0) x[i0] = -1;
      x[i] = j1;
      y[j1] = i;
      if (i0 >= 0) {
        if (umin < usubmin && retries-- > 0) free[--k] = i0;
        else free[numFree++] = i0;
      }
    }
  }
  // Augmentation: a shortest path from each free row to a free column.
  const d = new Float64Array(n);
  const pred = new Int32Array(n);
  const cols = new Int32Array(n);
  for (let f = 0; f < numFree; f++) {
    const freeRow = free[f] as number;
    const fo = freeRow * n;
    for (let j = 0; j < n; j++) {
      d[j] = (c[fo + j] as number) - (v[j] as number);
      pred[j] = freeRow;
      cols[j] = j;
    }
    // cols[0, low): scanned; cols[low, up): at distance min, not scanned; cols[up, n): farther.
    let low = 0;
    let up = 0;
    let last = 0;
    let min = 0;
    let end = -1;
    while (end < 0) {
      if (up === low) {
        last = low - 1;
        min = d[cols[up++] as number] as number;
        for (let k = up; k < n; k++) {
          const j = cols[k] as number;
          const h = d[j] as number;
          if (h <= min) {
            if (h < min) {
              up = low;
              min = h;
            }
            cols[k] = cols[up] as number;
            cols[up++] = j;
          }
        }
        for (let k = low; k < up; k++) {
          const j = cols[k] as number;
          if ((y[j] as number) < 0) {
            end = j;
            break;
          }
        }
      }
      if (end >= 0) break;
      const j1 = cols[low++] as number;
      const i = y[j1] as number;
      const o = i * n;
      const h = (c[o + j1] as number) - (v[j1] as number) - min;
      for (let k = up; k < n; k++) {
        const j = cols[k] as number;
        const v2 = (c[o + j] as number) - (v[j] as number) - h;
        if (v2 < (d[j] as number)) {
          pred[j] = i;
          if (v2 === min) {
            if ((y[j] as number) < 0) {
              end = j;
              break;
            }
            cols[k] = cols[up] as number;
            cols[up++] = j;
          }
          d[j] = v2;
        }
      }
    }
    // Prices of the scanned columns.
    for (let k = 0; k <= last; k++) {
      const j = cols[k] as number;
      v[j] = (v[j] as number) + (d[j] as number) - min;
    }
    // Flip the alternating path.
    let j = end;
    for (;;) {
      const i = pred[j] as number;
      y[j] = i;
      const next = x[i] as number;
      x[i] = j;
      if (i === freeRow) break;
      j = next;
    }
  }
  return x;
}
