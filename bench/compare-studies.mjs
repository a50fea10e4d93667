#!/usr/bin/env node
// compare-studies: do two twinscope output directories hold the same results?
//
//   node bench/compare-studies.mjs DIR_A DIR_B [--rtol 1e-9] [--json]
//
// This is the check that a refactor or an optimization did not change what the shipped pipelines
// compute: run a pipeline with the old and the new version of twinscope into two folders
// (`twinscope run` for a study or a sweep, `twinscope train` for a single run) and compare them.
// It is plain Node ESM that imports only apache-arrow and node: builtins (never src/ or dist/), so
// one copy of it can judge the outputs of any two versions.
//
// What is compared:
//   - every `.arrow` file under DIR_A or DIR_B, paired by relative path (results.arrow, groups.arrow,
//     measurements/*.arrow, embedding.arrow, runs/**/{checkpoints,metrics}.arrow, ...). A pair is the
//     same when the schemas match (column names, order and types, and the schema metadata), the row
//     counts match, and every cell matches once both tables are sorted by their scalar non-float
//     columns (strings, ints, bools, ...; ties keep file order), so a change in row order alone is
//     not a difference. Floats match within the relative tolerance --rtol (default 0, i.e. exactly):
//     |a - b| <= rtol * max(|a|, |b|), NaN equals NaN. Lists, fixed-size lists and binaries are
//     compared element by element in the same way; string columns whose cells are all JSON objects
//     or arrays (results.arrow's `options`) are compared as JSON (key order does not matter, numbers
//     within --rtol); all other values must be identical.
//   - the JSON files that hold results (RESULT_JSON below), deep-equal with the same float tolerance
//     applied to non-integer numbers, ignoring keys that differ between versions or times anyway
//     (IGNORED_KEYS, and any key ending in 'Ms' or 'Seconds').
// What is not: run.json (it records the toolkit version, timings and file hashes), the spec copies
// study.json/sweep.json, cache keys (key.json), and rendered figures: report/ and plots/ folders are
// skipped, as are `*.tmp*` leftovers of interrupted writes.
//
// Output: one line per file (`same`, `differs: <first difference>`, `only in A`, `only in B`) and a
// summary line; --json prints one JSON object instead. Exit status: 0 when every file is the same
// and none is missing, 1 otherwise, 2 on bad usage or when neither folder holds a result file.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { DataType, tableFromIPC } from 'apache-arrow';

const USAGE = 'usage: node bench/compare-studies.mjs DIR_A DIR_B [--rtol 1e-9] [--json]';

/** JSON files that hold results (compared); every other JSON file is a spec, a key or a log. */
const RESULT_JSON = new Set(['embedding.json', 'groups.json', 'status.json']);
/** Folders of rendered output, skipped wherever they appear. */
const SKIPPED_DIRS = new Set(['report', 'plots']);
/** JSON keys (and Arrow schema-metadata keys) that naturally differ between versions or times. */
const IGNORED_KEYS = new Set([
  'toolkit',
  'version',
  'createdAt',
  'created',
  'startedAt',
  'finishedAt',
  'time',
  'wall',
  'elapsed',
  'breakdown', // status.json: time and bytes per phase of the run that wrote it, not a result
  'checksum', // the seal of a sealed JSON file: its fields are compared one by one instead
]);

function ignoredKey(key) {
  const last = key.slice(key.lastIndexOf('.') + 1); // 'twinscope.version' -> 'version'
  return IGNORED_KEYS.has(last) || last.endsWith('Ms') || last.endsWith('Seconds');
}

// ---------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const dirs = [];
  let rtol = 0;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--rtol' || arg.startsWith('--rtol=')) {
      const text = arg === '--rtol' ? argv[++i] : arg.slice('--rtol='.length);
      rtol = Number(text);
      if (text === undefined || text.trim() === '' || !Number.isFinite(rtol) || rtol < 0) {
        throw new UsageError(
          `--rtol needs a number >= 0, got ${text === undefined ? 'nothing' : `'${text}'`}`,
        );
      }
    } else if (arg === '-h' || arg === '--help') return { help: true };
    else if (arg.startsWith('-')) throw new UsageError(`unknown option '${arg}'`);
    else dirs.push(arg);
  }
  if (dirs.length !== 2) throw new UsageError(`expected two directories, got ${dirs.length}`);
  for (const dir of dirs) {
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {}
    if (!isDir) throw new UsageError(`not a directory: ${dir}`);
  }
  return { dirA: dirs[0], dirB: dirs[1], rtol, json };
}

class UsageError extends Error {}

// ---------------------------------------------------------------------------------------------
// Which files

/** Relative paths ('/'-separated) of the result files under `root`. */
function resultFiles(root) {
  const out = [];
  const walk = (rel) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      if (entry.name.includes('.tmp')) continue;
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const stat = entry.isSymbolicLink() ? statSync(join(root, path)) : entry;
      if (stat.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) walk(path);
      } else if (stat.isFile() && (entry.name.endsWith('.arrow') || RESULT_JSON.has(entry.name))) {
        out.push(path);
      }
    }
  };
  walk('');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Value comparison. A comparator takes two values and a tally { values, maxRel }; it returns
// undefined when they match, else the first difference { at, a, b } (at: a path inside the value,
// '' for the value itself). It counts every differing leaf value in tally.values and keeps the
// largest relative difference of two floats in tally.maxRel, so it looks at the whole value even
// after the first difference.

/** |a - b| / max(|a|, |b|): 0 for equal values (NaN and NaN included), Infinity for NaN or ±Infinity vs anything else. */
function relDiff(a, b) {
  if (a === b || (Number.isNaN(a) && Number.isNaN(b))) return 0;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  return Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b));
}

function floatComparator(rtol) {
  return (a, b, tally) => {
    if (a === b) return undefined;
    if (a == null || b == null) {
      tally.values++;
      return { at: '', a, b };
    }
    const x = Number(a);
    const y = Number(b);
    if (Number.isNaN(x) && Number.isNaN(y)) return undefined;
    const rel = relDiff(x, y);
    if (rel > tally.maxRel) tally.maxRel = rel;
    if (Math.abs(x - y) <= rtol * Math.max(Math.abs(x), Math.abs(y))) return undefined;
    tally.values++;
    return { at: '', a, b };
  };
}

function exactEqual(a, b) {
  if (a === b) return true;
  if (a == null || b == null || typeof a !== 'object' || typeof b !== 'object') return false;
  return String(a) === String(b); // e.g. decimals, which apache-arrow returns as objects
}

function exactComparator(a, b, tally) {
  if (exactEqual(a, b)) return undefined;
  tally.values++;
  return { at: '', a, b };
}

function bytesComparator(a, b, tally) {
  if (a == null || b == null) return exactComparator(a, b, tally);
  let first;
  if (a.length !== b.length) {
    tally.values++;
    first = { at: '.length', a: a.length, b: b.length };
  }
  for (let k = 0; k < Math.min(a.length, b.length); k++) {
    if (a[k] !== b[k]) {
      tally.values++;
      first ??= { at: `[${k}]`, a: a[k], b: b[k] };
    }
  }
  return first;
}

/** Elements of a list value (an apache-arrow Vector): a typed array when it has no nulls. */
function elements(vector) {
  return vector.nullCount === 0
    ? vector.toArray()
    : Array.from({ length: vector.length }, (_, k) => vector.get(k));
}

function listComparator(child) {
  return (a, b, tally) => {
    if (a == null || b == null) return exactComparator(a, b, tally);
    const xs = elements(a);
    const ys = elements(b);
    let first;
    if (xs.length !== ys.length) {
      tally.values++;
      first = { at: '.length', a: xs.length, b: ys.length };
    }
    for (let k = 0; k < Math.min(xs.length, ys.length); k++) {
      const diff = child(xs[k], ys[k], tally);
      if (diff) first ??= { ...diff, at: `[${k}]${diff.at}` };
    }
    return first;
  };
}

/** Struct, map, union and other nested values: compared as plain JSON data. */
function nestedComparator(rtol) {
  return (a, b, tally) => jsonDiff(toPlain(a), toPlain(b), '', rtol, tally);
}

function toPlain(value) {
  if (value == null || typeof value !== 'object') return value;
  if (typeof value.toJSON === 'function') return toPlain(value.toJSON());
  if (ArrayBuffer.isView(value)) return Array.from(value);
  if (Array.isArray(value)) return value.map(toPlain);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toPlain(v)]));
}

function comparatorFor(type, rtol) {
  if (DataType.isFloat(type)) return floatComparator(rtol);
  if (DataType.isList(type) || DataType.isFixedSizeList(type) || DataType.isLargeList(type)) {
    return listComparator(comparatorFor(type.children[0].type, rtol));
  }
  if (isBinaryType(type)) return bytesComparator;
  if (isScalarType(type)) return exactComparator;
  return nestedComparator(rtol);
}

function isBinaryType(type) {
  return (
    DataType.isBinary(type) ||
    DataType.isLargeBinary(type) ||
    DataType.isFixedSizeBinary(type) ||
    DataType.isBinaryView(type)
  );
}

/** Types whose values are single, exactly comparable and orderable values: the sort keys. */
function isScalarType(type) {
  return (
    DataType.isInt(type) ||
    DataType.isUtf8(type) ||
    DataType.isLargeUtf8(type) ||
    DataType.isBool(type) ||
    DataType.isDate(type) ||
    DataType.isTime(type) ||
    DataType.isTimestamp(type) ||
    DataType.isDuration(type) ||
    DataType.isDecimal(type) ||
    DataType.isNull(type) ||
    (DataType.isDictionary(type) && isScalarType(type.dictionary))
  );
}

// ---------------------------------------------------------------------------------------------
// Arrow tables

function readTable(path) {
  return tableFromIPC(readFileSync(path));
}

/**
 * Whether a string column holds JSON objects or arrays in every non-null row (e.g. results.arrow's
 * `options`): such cells are compared as JSON (key order does not matter, numbers within rtol).
 */
function isJsonColumn(column) {
  if (!DataType.isUtf8(column.type) && !DataType.isLargeUtf8(column.type)) return false;
  let any = false;
  for (let i = 0; i < column.length; i++) {
    const v = column.get(i);
    if (v == null) continue;
    if (!/^\s*[[{]/.test(v)) return false;
    try {
      JSON.parse(v);
    } catch {
      return false;
    }
    any = true;
  }
  return any;
}

/** JSON text with object keys sorted, so that equal JSON sorts and compares equal. */
function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Compares two cells of a JSON column as JSON values. */
function jsonCellComparator(rtol) {
  return (a, b, tally) => {
    if (a == null || b == null) return a === b ? undefined : count(tally, { at: '', a, b });
    return jsonDiff(JSON.parse(a), JSON.parse(b), '', rtol, tally);
  };
}

/** Order of the rows of `table` sorted by its scalar non-float columns; ties keep file order. */
function sortedRows(table, keyColumns, jsonColumns) {
  const keys = keyColumns.map((name) => {
    const column = table.getChild(name);
    const cell = jsonColumns.has(name)
      ? (i) => {
          const v = column.get(i);
          return v == null ? v : canonicalJson(JSON.parse(v));
        }
      : (i) => column.get(i);
    return Array.from({ length: table.numRows }, (_, i) => cell(i));
  });
  const order = Array.from({ length: table.numRows }, (_, i) => i);
  order.sort((i, j) => {
    for (const values of keys) {
      const c = compareScalars(values[i], values[j]);
      if (c !== 0) return c;
    }
    return i - j;
  });
  return order;
}

/** Total order on scalar values: nulls first, then by value (numbers and bigints mix fine). */
function compareScalars(a, b) {
  if (a === b) return 0;
  if (a == null) return -1;
  if (b == null) return 1;
  if (typeof a === 'object' || typeof b === 'object') {
    a = String(a);
    b = String(b);
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeSchema(schema) {
  return schema.fields.map((f) => `${f.name}: ${f.type}`).join(', ');
}

/** The first difference between two Arrow files as a sentence, or undefined when they match. */
function compareArrow(pathA, pathB, rtol) {
  const a = readTable(pathA);
  const b = readTable(pathB);
  if (describeSchema(a.schema) !== describeSchema(b.schema)) {
    return {
      detail: `columns: A [${describeSchema(a.schema)}] vs B [${describeSchema(b.schema)}]`,
    };
  }
  const metaDiff = compareMetadata(a.schema.metadata, b.schema.metadata);
  if (metaDiff) return { detail: metaDiff };
  if (a.numRows !== b.numRows) return { detail: `rows: A ${a.numRows} vs B ${b.numRows}` };

  const fields = a.schema.fields;
  const keyColumns = fields.filter((f) => isScalarType(f.type)).map((f) => f.name);
  const jsonColumns = new Set(
    fields
      .filter((_f, c) => isJsonColumn(a.getChildAt(c)) && isJsonColumn(b.getChildAt(c)))
      .map((f) => f.name),
  );
  const orderA = sortedRows(a, keyColumns, jsonColumns);
  const orderB = sortedRows(b, keyColumns, jsonColumns);
  const tally = { values: 0, maxRel: 0 };
  let first;
  fields.forEach((field, c) => {
    const compare = jsonColumns.has(field.name) ? jsonCellComparator(rtol) : comparatorFor(field.type, rtol);
    const columnA = a.getChildAt(c);
    const columnB = b.getChildAt(c);
    for (let r = 0; r < a.numRows; r++) {
      const i = orderA[r];
      const j = orderB[r];
      const diff = compare(columnA.get(i), columnB.get(j), tally);
      if (diff && (!first || r < first.r)) first = { column: field.name, r, i, j, diff };
    }
  });
  if (!first) return undefined;
  const { column, r, i, j, diff } = first;
  const rows = i === j ? `row ${i}` : `sorted row ${r} (A row ${i}, B row ${j})`;
  return {
    detail: `column '${column}', ${rows}${diff.at ? `, at ${diff.at}` : ''}: ${show(diff.a)} vs ${show(diff.b)}; ${summarizeTally(tally)}`,
    values: tally.values,
    maxRelDiff: tally.maxRel,
  };
}

function compareMetadata(metaA, metaB) {
  const keys = new Set([...metaA.keys(), ...metaB.keys()]);
  for (const key of [...keys].sort()) {
    if (ignoredKey(key) || metaA.get(key) === metaB.get(key)) continue;
    return `schema metadata '${key}': ${show(metaA.get(key))} vs ${show(metaB.get(key))}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// JSON files

/** Deep comparison of two parsed JSON values, in the comparator convention above. */
function jsonDiff(a, b, at, rtol, tally) {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b)) return a === b ? undefined : count(tally, { at, a, b });
    const diff = floatComparator(rtol)(a, b, tally);
    return diff && { ...diff, at };
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    let first;
    if (a.length !== b.length) first = count(tally, { at: `${at}.length`, a: a.length, b: b.length });
    for (let k = 0; k < Math.min(a.length, b.length); k++) {
      const diff = jsonDiff(a[k], b[k], `${at}[${k}]`, rtol, tally);
      first ??= diff;
    }
    return first;
  }
  if (isObject(a) && isObject(b)) {
    let first;
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      if (ignoredKey(key)) continue;
      const path = `${at}.${key}`;
      const diff = !(key in a)
        ? count(tally, { at: path, a: '(missing)', b: b[key] })
        : !(key in b)
          ? count(tally, { at: path, a: a[key], b: '(missing)' })
          : jsonDiff(a[key], b[key], path, rtol, tally);
      first ??= diff;
    }
    return first;
  }
  if (a === b) return undefined;
  return count(tally, { at, a, b });
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function count(tally, diff) {
  tally.values++;
  return diff;
}

function compareJson(pathA, pathB, rtol) {
  const a = JSON.parse(readFileSync(pathA, 'utf8'));
  const b = JSON.parse(readFileSync(pathB, 'utf8'));
  const tally = { values: 0, maxRel: 0 };
  const diff = jsonDiff(a, b, '', rtol, tally);
  if (!diff) return undefined;
  return {
    detail: `${diff.at || '(top level)'}: ${show(diff.a)} vs ${show(diff.b)}; ${summarizeTally(tally)}`,
    values: tally.values,
    maxRelDiff: tally.maxRel,
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting

function show(value) {
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'number') return String(value);
  if (value !== null && typeof value === 'object' && 'length' in value && !Array.isArray(value)) {
    return `<${value.length} values>`;
  }
  const text =
    JSON.stringify(toPlain(value), (_, v) => (typeof v === 'bigint' ? String(v) : v)) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function summarizeTally(tally) {
  const rel = tally.maxRel > 0 ? `, max rel diff ${tally.maxRel.toExponential(2)}` : '';
  return `${tally.values} value${tally.values === 1 ? '' : 's'} differ${tally.values === 1 ? 's' : ''}${rel}`;
}

function compareDirs(dirA, dirB, rtol) {
  const filesA = new Set(resultFiles(dirA));
  const filesB = new Set(resultFiles(dirB));
  const paths = [...new Set([...filesA, ...filesB])].sort();
  return paths.map((path) => {
    if (!filesB.has(path)) return { path, status: 'only in A' };
    if (!filesA.has(path)) return { path, status: 'only in B' };
    const compare = path.endsWith('.arrow') ? compareArrow : compareJson;
    try {
      const diff = compare(join(dirA, path), join(dirB, path), rtol);
      return diff ? { path, status: 'differs', ...diff } : { path, status: 'same' };
    } catch (error) {
      return { path, status: 'differs', detail: `cannot compare: ${error.message}` };
    }
  });
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`compare-studies: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { dirA, dirB, rtol, json } = args;
  const results = compareDirs(dirA, dirB, rtol);
  if (results.length === 0) {
    process.stderr.write(
      `compare-studies: no result files (.arrow, ${[...RESULT_JSON].join(', ')}) in either folder\n`,
    );
    return 2;
  }
  const summary = {
    files: results.length,
    same: results.filter((r) => r.status === 'same').length,
    differ: results.filter((r) => r.status === 'differs').length,
    missing: results.filter((r) => r.status.startsWith('only in')).length,
  };
  const ok = summary.same === summary.files;
  if (json) {
    // JSON has no Infinity (a NaN against a number): write it as a string rather than null.
    const finite = (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
    process.stdout.write(`${JSON.stringify({ dirA, dirB, rtol, ok, summary, files: results }, finite, 2)}\n`);
  } else {
    for (const r of results)
      process.stdout.write(`${r.path}: ${r.status}${r.detail ? `: ${r.detail}` : ''}\n`);
    process.stdout.write(
      `compare: ${summary.files} files, ${summary.same} same, ${summary.differ} differ, ${summary.missing} missing\n`,
    );
  }
  return ok ? 0 : 1;
}

process.exitCode = main();
