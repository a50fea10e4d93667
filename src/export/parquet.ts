/**
 * Export a run directory's Arrow tables (`checkpoints.arrow`, `metrics.arrow`) to Parquet with
 * DuckDB, column for column, so that tools without an Arrow IPC reader (DuckDB's own Arrow reader is
 * a download extension, pandas without pyarrow, Spark) can query a run.
 *
 * Columns are mapped by type: Int8..Int64 → TINYINT..BIGINT (unsigned alike), Float32/Float64 →
 * FLOAT/DOUBLE, Utf8 → VARCHAR, Bool → BOOLEAN, FixedSizeList<Float32|Float64> and
 * List<Float32|Float64> → FLOAT[]/DOUBLE[] lists (DuckDB's fixed-size ARRAY type is capped at 100,000
 * elements, too small for weight tensors, and Parquet has no fixed-size list anyway). Nulls stay null. Float32 values are written as float32,
 * so weights round-trip bit for bit. The Arrow schema metadata (`twinscope.layout`,
 * `twinscope.format`, …) is copied into the Parquet footer's key-value metadata.
 *
 * Each Parquet file is written under a temporary name in the output directory and renamed into
 * place, so a reader never sees a half-written file. The output directory is locked while it is
 * written (util/folder-lock.ts): a second writer is refused with a LockedError.
 */
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  BIGINT,
  BOOLEAN,
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  type DuckDBType,
  type DuckDBValue,
  FLOAT,
  INTEGER,
  LIST,
  listValue,
  SMALLINT,
  TINYINT,
  UBIGINT,
  UINTEGER,
  USMALLINT,
  UTINYINT,
  VARCHAR,
} from '@duckdb/node-api';
import { DataType, type Field, type Table, tableFromIPC, type Vector } from 'apache-arrow';
import { checkRunFiles } from '../train/run-files.js';
import { withFolderLock } from '../util/folder-lock.js';

/** One Parquet file that {@link exportParquet} wrote. */
export interface ExportedFile {
  /** The Arrow table it was converted from. */
  readonly table: 'checkpoints' | 'metrics';
  /** Absolute path of the Arrow file read. */
  readonly source: string;
  /** Absolute path of the Parquet file written. */
  readonly path: string;
  readonly rows: number;
  readonly columns: number;
}

/** What {@link exportParquet} wrote. */
export interface ExportResult {
  readonly outDir: string;
  readonly files: readonly ExportedFile[];
}

/** How one Arrow column is created in DuckDB and how a non-null value is read from it. */
interface ColumnPlan {
  readonly name: string;
  readonly type: DuckDBType;
  /** Number of list elements in a row (0 for scalars); bounds how many rows go in one chunk. */
  readonly width: number;
  readonly value: (vector: Vector, row: number) => DuckDBValue;
}

/** The Arrow tables of a run directory that {@link exportParquet} converts, in order. */
const EXPORTED_TABLES: readonly ExportedFile['table'][] = ['checkpoints', 'metrics'];

/** Most list elements per appended data chunk (bounds the JS-side copy of a chunk). */
const CHUNK_ELEMENTS = 1 << 22;
/** DuckDB's standard vector size: the most rows in one data chunk. */
const CHUNK_ROWS = 2048;

/**
 * Write `checkpoints.parquet` and `metrics.parquet` for the run in `runDir` into `outDir` (default:
 * `runDir`), from `runDir/checkpoints.arrow` and `runDir/metrics.arrow` (Arrow IPC file or stream
 * format). Both Arrow files must exist. Existing Parquet files of the same name are replaced
 * atomically.
 */
export async function exportParquet(runDir: string, outDir: string = runDir): Promise<ExportResult> {
  const dir = resolve(runDir);
  const out = resolve(outDir);
  const sources = EXPORTED_TABLES.map((table) => ({ table, source: join(dir, `${table}.arrow`) }));
  for (const { source } of sources) {
    if (!existsSync(source))
      throw new Error(`export: run directory '${dir}' has no ${source.slice(dir.length + 1)}`);
  }
  // Finished files must match the checksums run.json records before they are exported.
  checkRunFiles(dir);
  const tables = sources.map(({ table, source }) => ({ table, source, arrow: readArrowTable(source) }));
  return withFolderLock(out, async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    const files: ExportedFile[] = [];
    try {
      for (const { table, source, arrow } of tables) {
        const path = join(out, `${table}.parquet`);
        await writeParquet(connection, table, arrow, path, source);
        files.push({ table, source, path, rows: arrow.numRows, columns: arrow.numCols });
      }
    } finally {
      connection.closeSync();
      instance.closeSync();
    }
    return { outDir: out, files };
  });
}

function readArrowTable(path: string): Table {
  const bytes = readFileSync(path);
  try {
    return tableFromIPC(bytes);
  } catch (e) {
    throw new Error(`export: '${path}' is not a readable Arrow IPC file or stream (${(e as Error).message})`);
  }
}

async function writeParquet(
  connection: DuckDBConnection,
  name: string,
  table: Table,
  path: string,
  source: string,
): Promise<void> {
  const plans = table.schema.fields.map((field) => columnPlan(field, source));
  const columns = plans.map((p) => `${quoteIdent(p.name)} ${p.type.toString()}`).join(', ');
  await connection.run(`CREATE OR REPLACE TABLE ${quoteIdent(name)} (${columns})`);
  const appender = await connection.createAppender(name);
  try {
    const vectors = plans.map((_, i) => table.getChildAt(i) as Vector);
    const width = plans.reduce((sum, p) => sum + p.width, 0);
    const rowsPerChunk = Math.max(1, Math.min(CHUNK_ROWS, Math.floor(CHUNK_ELEMENTS / Math.max(1, width))));
    const types = plans.map((p) => p.type);
    for (let first = 0; first < table.numRows; first += rowsPerChunk) {
      const count = Math.min(rowsPerChunk, table.numRows - first);
      const chunk = DuckDBDataChunk.create(types, count);
      chunk.setColumns(
        plans.map((plan, c) => {
          const vector = vectors[c] as Vector;
          return Array.from({ length: count }, (_, k) =>
            vector.isValid(first + k) ? plan.value(vector, first + k) : null,
          );
        }),
      );
      appender.appendDataChunk(chunk);
    }
  } finally {
    appender.closeSync();
  }

  const tmp = `${path}.tmp-${process.pid}`;
  const options = ['FORMAT parquet'];
  const metadata = [...table.schema.metadata.entries()];
  if (metadata.length > 0) {
    options.push(
      `KV_METADATA {${metadata.map(([k, v]) => `${quoteString(k)}: ${quoteString(v)}`).join(', ')}}`,
    );
  }
  try {
    await connection.run(`COPY ${quoteIdent(name)} TO ${quoteString(tmp)} (${options.join(', ')})`);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(name)}`);
  }
}

const INT_TYPES: Record<string, DuckDBType> = {
  i8: TINYINT,
  i16: SMALLINT,
  i32: INTEGER,
  i64: BIGINT,
  u8: UTINYINT,
  u16: USMALLINT,
  u32: UINTEGER,
  u64: UBIGINT,
};

function columnPlan(field: Field, source: string): ColumnPlan {
  const { name, type } = field;
  const unsupported = () =>
    new Error(`export: '${source}', column '${name}': unsupported Arrow type ${type} for Parquet export`);
  if (DataType.isInt(type)) {
    const duck = INT_TYPES[`${type.isSigned ? 'i' : 'u'}${type.bitWidth}`];
    if (!duck) throw unsupported();
    if (type.bitWidth === 64) return { name, type: duck, width: 0, value: (v, r) => BigInt(v.get(r)) };
    return { name, type: duck, width: 0, value: (v, r) => v.get(r) as number };
  }
  if (DataType.isFloat(type)) {
    if (type.precision !== 1 && type.precision !== 2) throw unsupported();
    return {
      name,
      type: type.precision === 1 ? FLOAT : DOUBLE,
      width: 0,
      value: (v, r) => v.get(r) as number,
    };
  }
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type)) {
    return { name, type: VARCHAR, width: 0, value: (v, r) => v.get(r) as string };
  }
  if (DataType.isBool(type)) {
    return { name, type: BOOLEAN, width: 0, value: (v, r) => v.get(r) as boolean };
  }
  if (DataType.isFixedSizeList(type) || DataType.isList(type)) {
    const child = type.children[0]?.type;
    if (!DataType.isFloat(child) || (child.precision !== 1 && child.precision !== 2)) throw unsupported();
    // Variable-length lists: assume 1024 elements a row when sizing chunks.
    const width = DataType.isFixedSizeList(type) ? type.listSize : 1024;
    return {
      name,
      type: LIST(child.precision === 1 ? FLOAT : DOUBLE),
      width,
      value: (v, r) => {
        const inner = v.get(r) as Vector;
        if (inner.nullCount > 0) {
          throw new Error(
            `export: '${source}', column '${name}', row ${r}: null list elements are not supported`,
          );
        }
        return listValue(Array.from(inner.toArray() as Float32Array | Float64Array));
      },
    };
  }
  throw unsupported();
}

/** A SQL identifier in double quotes (column names like `dense0.weight` contain dots). */
function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A SQL string literal. */
function quoteString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
