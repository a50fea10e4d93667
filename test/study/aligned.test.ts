/**
 * Alignment files (study/aligned.ts): permutations stored as sealed JSON and materialized on
 * demand into the permuted run; a modified file, a list that is not a permutation, and a source run
 * re-trained since the alignment are refused, naming the file (verify on a study with alignments:
 * test/study/run-study.test.ts).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { applyPermutations } from '../../src/measure/align.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { materializeAlignment, readAlignment, writeAlignment } from '../../src/study/aligned.js';
import { readRunJson, trainRun } from '../../src/train/run.js';
import { IntegrityError } from '../../src/util/errors.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-aligned-');
const runDir = join(root, 'runs', 'b');
const refDir = join(root, 'runs', 'a');
const file = join(root, 'aligned', 'b', 'weight.json');
const perms = (() => {
  const rng = Rng.fromSeed(5).stream('perms');
  return [Int32Array.from(rng.permutation(16)), Int32Array.from(rng.permutation(16))];
})();

beforeAll(async () => {
  await trainRun(parseRunSpec({ ...tinyBase, name: 'b' }), runDir);
  await trainRun(parseRunSpec({ ...tinyBase, name: 'a', seed: 9 }), refDir);
  const { specHash } = readRunJson(runDir);
  writeAlignment(file, {
    sourceDir: runDir,
    referenceDir: refDir,
    method: 'weight',
    step: 7,
    perms,
    sourceSpecHash: specHash,
  });
}, 60_000);

describe('alignment files', () => {
  test('round trip: paths, method, step and permutations as written, stored relative to the file', () => {
    const a = readAlignment(file);
    expect(a).toMatchObject({ sourceDir: runDir, referenceDir: refDir, method: 'weight', step: 7 });
    expect(a.perms).toEqual(perms);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.source).toBe('../../runs/b');
    expect(doc.kind).toBe('alignment');
  });

  test('materialized: every checkpoint of B permuted, weights and optimizer slots', async () => {
    const out = join(root, 'materialized');
    // A folder that exists is replaced whole (its lock aside).
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'stale.txt'), 'left over');
    const run = await materializeAlignment(file, out);
    expect(run.lineage).toMatchObject({ alignment: 'weight' });
    expect(readdirSync(out).sort()).toEqual(['checkpoints.arrow', 'metrics.arrow', 'run.json']);
    const source = readCheckpoints(runDir);
    const written = readCheckpoints(out);
    expect(written.map((c) => c.step)).toEqual(source.map((c) => c.step));
    const layout = readRunJson(runDir).layout;
    written.forEach((c, i) => {
      const s = source[i] as (typeof source)[number];
      expect(c.params).toEqual(applyPermutations(s.params, layout, perms));
      c.opt.slots.forEach((slot, k) =>
        expect(slot).toEqual(applyPermutations(s.opt.slots[k] as Float32Array, layout, perms)),
      );
    });
  });

  test('a changed number, a non-permutation and a stale source are refused, naming the file', async () => {
    const text = readFileSync(file, 'utf8');
    const copy = join(root, 'aligned', 'b', 'changed.json');
    writeFileSync(copy, text.replace('"step": 7', '"step": 8'));
    expect(() => readAlignment(copy)).toThrow(IntegrityError);
    expect(() => readAlignment(copy)).toThrow(`${copy}: content does not match its checksum`);

    const twice = join(root, 'aligned', 'b', 'twice.json');
    const first = Int32Array.from(perms[0] as Int32Array);
    first[0] = first[1] as number; // unit 1 twice, unit 0 never
    writeAlignment(twice, { ...readAlignment(file), perms: [first, perms[1] as Int32Array] });
    expect(() => readAlignment(twice)).toThrow(`${twice}: perms must be a list of permutations of 0 … n−1`);

    const stale = join(root, 'aligned', 'b', 'stale.json');
    writeAlignment(stale, { ...readAlignment(file), sourceSpecHash: '0'.repeat(64) });
    await expect(materializeAlignment(stale, join(root, 'never'))).rejects.toThrow(
      /stale\.json: the run .* has spec hash .*, but the alignment was found for 0000000000000000… \(re-run the study to align it again\)/,
    );
  });

  test('a missing alignment file is bad input: exit 2, naming it, nothing written', async () => {
    const io = capture();
    const missing = join(root, 'aligned', 'b', 'nope.json');
    const out = join(root, 'not-written');
    expect(await main(['node', 'twinscope', 'materialize', missing, '--out', out], io)).toBe(EXIT_USAGE);
    expect(io.err).toContain(`${missing}: no such alignment file`);
    expect(existsSync(out)).toBe(false);
  });
});
