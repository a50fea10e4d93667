/**
 * Arrow IPC framing, read directly from the bytes (no Arrow decoding): which format a file is in,
 * where each message starts and ends, and whether the file ends with a torn (partially written)
 * message. This is what crash recovery and verification rest on.
 *
 * Stream format: a sequence of messages, each `0xFFFFFFFF` (continuation), an int32 metadata length,
 * the flatbuffer `Message`, then `Message.bodyLength` body bytes; optionally an end-of-stream marker
 * `0xFFFFFFFF 0x00000000`. File format: `ARROW1\0\0`, the stream (with end-of-stream marker), the
 * footer flatbuffer, its int32 length and `ARROW1`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StoreError } from './errors.js';

/** Flatbuffer `MessageHeader` tag of a schema (a dictionary batch is 2, unused by the store). */
const HEADER_SCHEMA = 1;
/** Flatbuffer `MessageHeader` tag of a record batch. */
const HEADER_RECORD_BATCH = 3;

const CONTINUATION = 0xffffffff;
const MAGIC = 'ARROW1';

/** One complete IPC message found in a file. */
interface MessageInfo {
  /** Byte offset of the message's continuation marker. */
  readonly offset: number;
  /** Byte offset just past the message body. */
  readonly end: number;
  /** `MessageHeader` tag (1 schema, 3 record batch). */
  readonly headerType: number;
  /** Body length from the message header. */
  readonly bodyLength: number;
  /** Number of rows (record batches only; 0 otherwise). */
  readonly rows: number;
}

/** An incomplete message at the end of a stream file: what a crash during an append leaves. */
interface TornTail {
  /** Offset where the incomplete message starts (the file is sound up to here). */
  readonly offset: number;
  /** Bytes the message would need (its end offset), when the header was readable. */
  readonly needed: number | undefined;
  /** File size. */
  readonly size: number;
  /** Human-readable description, prefixed with the file name. */
  readonly message: string;
}

/** The framing of one store file. */
export interface ScanResult {
  /** `file` when the file starts with `ARROW1`, `stream` when it starts with a continuation marker. */
  readonly format: 'file' | 'stream';
  readonly size: number;
  /** The schema message. Always present in a stream; the file format keeps the schema in its footer
   * (apache-arrow's JS writer writes no schema message there, other writers do). */
  readonly schema: MessageInfo | undefined;
  /** File format only: offset and length of the footer flatbuffer. */
  readonly footer: { readonly offset: number; readonly length: number } | undefined;
  /** Complete record-batch messages, in order. */
  readonly batches: MessageInfo[];
  /** Offset just past the last complete message (schema or batch): a stream file is sound up to here. */
  readonly dataEnd: number;
  /** Whether an end-of-stream marker was found (always for the file format). */
  readonly eos: boolean;
  /** Incomplete trailing message of a stream file, if any. */
  readonly torn: TornTail | undefined;
}

/** Reads byte ranges of an open file (read-only). */
class RangeReader {
  constructor(
    readonly fd: number,
    readonly size: number,
  ) {}

  read(offset: number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }
}

/** Fields of a flatbuffer `Message` (and its `RecordBatch` header) that framing needs. */
interface MessageHeader {
  headerType: number;
  bodyLength: number;
  rows: number;
}

/** Parse the flatbuffer `Message` table with bounds checks; throws a plain Error on malformed input. */
export function parseMessageHeader(buf: Uint8Array): MessageHeader {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const need = (pos: number, n: number) => {
    if (pos < 0 || pos + n > buf.byteLength) throw new Error(`flatbuffer offset ${pos} out of range`);
  };
  const table = (pos: number) => {
    need(pos, 4);
    const vt = pos - dv.getInt32(pos, true);
    need(vt, 4);
    const vtSize = dv.getUint16(vt, true);
    if (vtSize < 4 || vtSize % 2 !== 0) throw new Error('bad flatbuffer vtable');
    need(vt, vtSize);
    return (field: number): number => {
      const at = 4 + 2 * field;
      if (at + 2 > vtSize) return 0;
      const off = dv.getUint16(vt + at, true);
      return off === 0 ? 0 : pos + off;
    };
  };
  need(0, 4);
  const root = dv.getUint32(0, true);
  const msg = table(root);
  const typePos = msg(1);
  let headerType = 0;
  if (typePos) {
    need(typePos, 1);
    headerType = dv.getUint8(typePos);
  }
  const lenPos = msg(3);
  let bodyLength = 0;
  if (lenPos) {
    need(lenPos, 8);
    const b = dv.getBigInt64(lenPos, true);
    if (b < 0n || b > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bad body length ${b}`);
    bodyLength = Number(b);
  }
  let rows = 0;
  if (headerType === HEADER_RECORD_BATCH) {
    const hdrRef = msg(2);
    if (!hdrRef) throw new Error('record batch message without header');
    need(hdrRef, 4);
    const rb = table(hdrRef + dv.getUint32(hdrRef, true));
    const rowsPos = rb(0);
    if (rowsPos) {
      need(rowsPos, 8);
      const r = dv.getBigInt64(rowsPos, true);
      if (r < 0n || r > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`bad row count ${r}`);
      rows = Number(r);
    }
  }
  return { headerType, bodyLength, rows };
}

/** Whether all bytes of `r` from `offset` to the end are zero (a zero-filled tail left by a crash). */
function zeroTail(r: RangeReader, offset: number): boolean {
  const chunk = 1 << 16;
  for (let pos = offset; pos < r.size; pos += chunk) {
    const b = r.read(pos, Math.min(chunk, r.size - pos));
    for (const x of b) if (x !== 0) return false;
  }
  return true;
}

/**
 * Scan the framing of a store file without decoding it. Opens the file read-only.
 * Throws {@link StoreError} (prefixed with the file's name) for anything that is not a torn tail
 * of a stream: not Arrow, a bad message header, a truncated file-format file, a missing footer.
 */
export function scanFile(file: string): ScanResult {
  const name = path.basename(file);
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new StoreError(`${name}: cannot open: ${(e as Error).message}`, name);
  }
  try {
    return scanFd(new RangeReader(fd, fs.fstatSync(fd).size), name);
  } finally {
    fs.closeSync(fd);
  }
}

function scanFd(r: RangeReader, name: string): ScanResult {
  const fail = (msg: string): never => {
    throw new StoreError(`${name}: ${msg}`, name);
  };
  const head = r.read(0, Math.min(8, r.size));
  const dvHead = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let format: 'file' | 'stream';
  let pos: number;
  if (head.length >= 6 && String.fromCharCode(...head.subarray(0, 6)) === MAGIC) {
    format = 'file';
    pos = 8;
  } else if (head.length >= 4 && dvHead.getUint32(0, true) === CONTINUATION) {
    format = 'stream';
    pos = 0;
  } else {
    return fail(
      r.size === 0 ? 'not an Arrow IPC file or stream (file is empty)' : 'not an Arrow IPC file or stream',
    );
  }
  let schema: MessageInfo | undefined;
  const batches: MessageInfo[] = [];
  let dataEnd = pos;
  let eos = false;
  let torn: TornTail | undefined;
  const what = () => (schema || format === 'file' ? 'record batch' : 'schema message');
  const tornAt = (offset: number, needed: number | undefined, part = '') => {
    const msg =
      needed === undefined
        ? `${name}: truncated ${what()} at byte ${offset} (file ends at ${r.size})`
        : `${name}: truncated ${what()} at byte ${offset}: ${part}needs bytes up to ${needed} (file ends at ${r.size})`;
    torn = { offset, needed, size: r.size, message: msg };
  };
  while (pos < r.size) {
    if (r.size - pos < 8) {
      tornAt(pos, pos + 8, 'its prefix ');
      break;
    }
    const pre = r.read(pos, 8);
    const dv = new DataView(pre.buffer);
    const marker = dv.getUint32(0, true);
    if (marker !== CONTINUATION) {
      if (format === 'stream' && zeroTail(r, pos)) {
        tornAt(pos, undefined);
        break;
      }
      return fail(`invalid message marker 0x${marker.toString(16).padStart(8, '0')} at byte ${pos}`);
    }
    const metaLen = dv.getInt32(4, true);
    if (metaLen === 0) {
      eos = true;
      pos += 8;
      break;
    }
    if (metaLen < 0) return fail(`invalid message metadata length ${metaLen} at byte ${pos}`);
    const metaEnd = pos + 8 + metaLen;
    if (metaEnd > r.size) {
      tornAt(pos, metaEnd, 'its header ');
      break;
    }
    let hdr: MessageHeader;
    try {
      hdr = parseMessageHeader(r.read(pos + 8, metaLen));
    } catch (e) {
      return fail(`invalid message header at byte ${pos}: ${(e as Error).message}`);
    }
    const end = metaEnd + hdr.bodyLength;
    if (end > r.size) {
      tornAt(pos, end);
      break;
    }
    const info: MessageInfo = {
      offset: pos,
      end,
      headerType: hdr.headerType,
      bodyLength: hdr.bodyLength,
      rows: hdr.rows,
    };
    if (!schema && batches.length === 0 && hdr.headerType === HEADER_SCHEMA) {
      schema = info;
    } else if (!schema && format === 'stream') {
      return fail(`first message at byte ${pos} is not a schema (header type ${hdr.headerType})`);
    } else if (hdr.headerType === HEADER_RECORD_BATCH) {
      batches.push(info);
    } else {
      return fail(`unexpected message (header type ${hdr.headerType}) at byte ${pos}`);
    }
    pos = end;
    dataEnd = end;
  }
  let footer: { offset: number; length: number } | undefined;
  if (format === 'stream' && !schema) {
    if (torn) return fail((torn as TornTail).message.slice(name.length + 2));
    return fail('no schema message');
  }
  if (format === 'file') {
    if (torn) return fail((torn as TornTail).message.slice(name.length + 2));
    if (!eos) return fail(`missing end-of-stream marker before footer (file ends at ${r.size})`);
    const tail = r.read(Math.max(0, r.size - 10), Math.min(10, r.size));
    if (tail.length < 10 || String.fromCharCode(...tail.subarray(4)) !== MAGIC) {
      return fail(
        `missing trailing ARROW1 magic: file is truncated or not a finished Arrow IPC file (${r.size} bytes)`,
      );
    }
    const footerLen = new DataView(tail.buffer).getInt32(0, true);
    if (footerLen <= 0 || r.size - 10 - footerLen < pos) {
      return fail(`invalid footer length ${footerLen} (file is ${r.size} bytes, data ends at ${pos})`);
    }
    footer = { offset: r.size - 10 - footerLen, length: footerLen };
  } else if (eos && pos < r.size) {
    return fail(`${r.size - pos} bytes after the end-of-stream marker at byte ${pos - 8}`);
  }
  return { format, size: r.size, schema, footer, batches, dataEnd, eos, torn };
}

/** Read `[start, end)` of a file (read-only). */
export function readRange(file: string, start: number, end: number): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    return new RangeReader(fd, end).read(start, end - start);
  } finally {
    fs.closeSync(fd);
  }
}
