/** Sealed JSON: the seal is the sha256 of the canonical JSON, so re-indentation keeps it and any changed value breaks it. */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { IntegrityError } from '../../src/util/errors.js';
import { formatBelow, readSealedJson, sealJson, writeSealedJson } from '../../src/util/sealed-json.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-sealed-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('sealed JSON', () => {
  const doc = { format: 2, b: [1, 2.5, 'x'], a: { z: null, y: 1e-7 } };

  test('the seal is the sha256 of the canonical JSON (sorted keys, no spaces) without it', () => {
    const canonical = '{"a":{"y":1e-7,"z":null},"b":[1,2.5,"x"],"format":2}';
    expect(sealJson(doc).checksum).toBe(createHash('sha256').update(canonical).digest('hex'));
    // Sealing a sealed value replaces the seal rather than covering it.
    expect(sealJson(sealJson(doc))).toEqual(sealJson(doc));
  });

  test('read back without the seal; re-indented or re-ordered still passes', () => {
    const path = join(root, 'doc.json');
    writeSealedJson(path, doc);
    expect(readSealedJson(path)).toEqual(doc);
    const sealed = JSON.parse(readFileSync(path, 'utf8'));
    const reordered = Object.fromEntries(Object.entries(sealed).reverse());
    writeFileSync(path, JSON.stringify(reordered));
    expect(readSealedJson(path)).toEqual(doc);
  });

  test('a changed value, a missing seal in a sealed format, and invalid JSON are IntegrityErrors naming the file', () => {
    const path = join(root, 'changed.json');
    writeSealedJson(path, doc);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.replace('2.5', '2.6'));
    expect(() => readSealedJson(path)).toThrow(IntegrityError);
    expect(() => readSealedJson(path)).toThrow(`${path}: content does not match its checksum`);
    const { checksum: _c, ...unsealed } = JSON.parse(text);
    writeFileSync(path, JSON.stringify(unsealed));
    expect(() => readSealedJson(path, formatBelow(2))).toThrow(`${path}: no 'checksum' field`);
    // The same document in a format from before seals is accepted.
    writeFileSync(path, JSON.stringify({ ...unsealed, format: 1 }));
    expect(readSealedJson(path, formatBelow(2))).toEqual({ ...doc, format: 1 });
    writeFileSync(path, text.slice(0, 20));
    expect(() => readSealedJson(path)).toThrow(new RegExp(`^${path}: not valid JSON`));
    writeFileSync(path, '[1, 2]');
    expect(() => readSealedJson(path)).toThrow(`${path}: not a JSON object`);
  });
});
