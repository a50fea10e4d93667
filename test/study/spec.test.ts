import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SpecError } from '../../src/spec/errors.js';
import {
  LOCKSTEP_AUTO_MAX_PARAMS,
  loadStudySpec,
  lockstepByDefault,
  MEASURE_DEFAULTS,
  parseStudySpec,
} from '../../src/study/spec.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const base = { ...tinyBase, seed: 3 };

const minimal = {
  name: 'tiny',
  base,
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-4], forkSteps: [0, { epochs: 1 }] }],
};

/** The problems of a spec that must be rejected. */
function problems(json: unknown, source?: string): string[] {
  try {
    parseStudySpec(json, source);
  } catch (e) {
    expect(e).toBeInstanceOf(SpecError);
    return (e as SpecError).message.split('\n');
  }
  throw new Error('spec was accepted');
}

describe('lockstepByDefault', () => {
  test("'auto' picks lock-step for small dense chains only; an explicit value wins", () => {
    expect(lockstepByDefault('auto', 'mlp', 4_482)).toBe(true); // MLP 2-64-64-2
    expect(lockstepByDefault('auto', 'mlp', LOCKSTEP_AUTO_MAX_PARAMS)).toBe(true);
    expect(lockstepByDefault('auto', 'mlp', LOCKSTEP_AUTO_MAX_PARAMS + 1)).toBe(false);
    expect(lockstepByDefault('auto', 'mlp', 269_322)).toBe(false); // MLP 784-256-256-10
    expect(lockstepByDefault('auto', 'cnn', 1_000)).toBe(false);
    expect(lockstepByDefault('auto', 'resnet', 1_000)).toBe(false);
    expect(lockstepByDefault(true, 'mlp', 269_322)).toBe(true);
    expect(lockstepByDefault(false, 'mlp', 4_482)).toBe(false);
  });
});

describe('parseStudySpec', () => {
  test('fills the defaults of a minimal spec', () => {
    const s = parseStudySpec(minimal);
    expect(s.name).toBe('tiny');
    expect(s.base.seed).toBe(3);
    expect(s.base.optimizer.lr).toBe(0.1);
    expect(s.seeds).toEqual([3]);
    expect(s.perturbations).toEqual([
      { kind: 'gaussian', sigmas: [0, 1e-4], forkSteps: [0, { epochs: 1 }], repeats: 1 },
    ]);
    expect(s.lockstep).toBe('auto');
    expect(s.threadsPerWorker).toBe(1);
    expect(s.workers).toBeUndefined();
    expect(s.onset).toBeUndefined();
    // No measure block: every family, with its defaults; distances at every checkpoint.
    expect(s.measure).toEqual({
      distance: { at: 'checkpoints' },
      barrier: { at: 'end', alphas: 11, examples: 10_000, splits: ['train', 'test'] },
      align: { at: 'end', methods: ['weight'], examples: 5000, exportAligned: false },
      cka: { at: 'end', kernel: 'linear', debiased: false, examples: 2000 },
      lyapunov: { window: 5 },
    });
    expect(s.measure.barrier?.alphas).toBe(MEASURE_DEFAULTS.barrier.alphas);
  });

  test('keeps given values and resolves repeats, seeds, lockstep and workers', () => {
    const s = parseStudySpec({
      ...minimal,
      seeds: [0, 7],
      perturbations: [
        { kind: 'batch', sigmas: [1e-3], forkSteps: [5], repeats: 3, mask: '^dense0', fraction: 0.5 },
        { kind: 'seed', forkSteps: [0] },
        { kind: 'init', repeats: 2 },
      ],
      measure: { barrier: { at: 'checkpoints', alphas: 5 } },
      lockstep: false,
      workers: 4,
      threadsPerWorker: 2,
    });
    expect(s.seeds).toEqual([0, 7]);
    expect(s.perturbations).toEqual([
      { kind: 'batch', sigmas: [1e-3], forkSteps: [5], repeats: 3, mask: '^dense0', fraction: 0.5 },
      { kind: 'seed', forkSteps: [0], repeats: 1 },
      { kind: 'init', repeats: 2 },
    ]);
    // Only the named family is measured.
    expect(s.measure).toEqual({
      barrier: { at: 'checkpoints', alphas: 5, examples: 10_000, splits: ['train', 'test'] },
    });
    expect(s.lockstep).toBe(false);
    expect(s.workers).toBe(4);
    expect(s.threadsPerWorker).toBe(2);
  });

  test('lyapunov alone brings L2 distances at every checkpoint', () => {
    const s = parseStudySpec({ ...minimal, measure: { lyapunov: { window: 3 } } });
    expect(s.measure).toEqual({ distance: { at: 'checkpoints' }, lyapunov: { window: 3 } });
  });

  test('the embedding is opt-in and fills its defaults', () => {
    expect(parseStudySpec(minimal).measure.embedding).toBeUndefined();
    const s = parseStudySpec({ ...minimal, measure: { distance: {}, embedding: {} } });
    expect(s.measure).toEqual({
      distance: { at: 'checkpoints' },
      embedding: { method: 'inpca', components: 3, examples: 1000 },
    });
    expect(s.measure.embedding).toEqual(MEASURE_DEFAULTS.embedding);
    const pca = parseStudySpec({ ...minimal, measure: { embedding: { method: 'pca', components: 64 } } });
    // The embedding brings no pair measurement.
    expect(pca.measure).toEqual({ embedding: { method: 'pca', components: 64, examples: 1000 } });
    const given = parseStudySpec({ ...minimal, measure: { embedding: { components: 1, examples: 64 } } });
    expect(given.measure.embedding).toEqual({ method: 'inpca', components: 1, examples: 64 });
  });

  test('an onset search resolves its defaults and adds a barrier measurement', () => {
    const s = parseStudySpec({
      ...minimal,
      measure: { distance: {} },
      onset: { kind: 'gaussian', sigmas: [1e-3] },
    });
    expect(s.onset).toEqual({ kind: 'gaussian', sigmas: [1e-3], threshold: 0.02, repeats: 1 });
    expect(s.measure.barrier).toEqual({ at: 'end', alphas: 11, examples: 10_000, splits: ['test'] });
    expect(s.measure.distance).toEqual({ at: 'checkpoints' });
    // A seed onset needs no σ; an existing barrier block is kept as is.
    const seed = parseStudySpec({
      ...minimal,
      measure: { barrier: { alphas: 3, splits: ['train'] } },
      onset: { kind: 'seed', threshold: 0.1, repeats: 2 },
    });
    expect(seed.onset).toEqual({ kind: 'seed', sigmas: [0], threshold: 0.1, repeats: 2 });
    expect(seed.measure.barrier).toEqual({ at: 'end', alphas: 3, examples: 10_000, splits: ['train'] });
  });
});

describe('study spec errors', () => {
  test('a negative σ names its index', () => {
    const p = problems(
      { ...minimal, perturbations: [{ kind: 'gaussian', sigmas: [0, -1e-3], forkSteps: [0] }] },
      'study.json',
    );
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^study\.json: perturbations\[0\]\.sigmas\[1\]: /);
  });

  test('every problem is reported, one line each, naming the field', () => {
    const p = problems(
      {
        ...minimal,
        bogus: 1,
        seeds: [-1],
        perturbations: [{ kind: 'gaussian', sigmas: [-1], forkSteps: [1.5] }],
        workers: 0,
        measure: { cka: { examples: 2 } },
      },
      's.json',
    );
    expect(p).toHaveLength(6);
    for (const line of p) expect(line.startsWith('s.json: ')).toBe(true);
    const fields = p.map((l) => l.slice('s.json: '.length).split(':')[0]);
    expect(fields).toEqual(
      expect.arrayContaining([
        'seeds[0]',
        'perturbations[0].sigmas[0]',
        'perturbations[0].forkSteps[0]',
        'workers',
        'measure.cka.examples',
      ]),
    );
    expect(p.some((l) => l.includes('bogus'))).toBe(true);
  });

  test('bad embedding options name their field', () => {
    const field = (embedding: unknown) =>
      problems({ ...minimal, measure: { embedding } }, 'e.json').map((l) => l.split(':')[1]?.trim());
    expect(field({ components: 0 })).toEqual(['measure.embedding.components']);
    expect(field({ components: 65 })).toEqual(['measure.embedding.components']);
    expect(field({ components: 2.5 })).toEqual(['measure.embedding.components']);
    expect(field({ examples: 0 })).toEqual(['measure.embedding.examples']);
    expect(field({ method: 'tsne' })).toEqual(['measure.embedding.method']);
    expect(field({ sigma: 0 })).toEqual(['measure.embedding.sigma']);
    const unknown = problems({ ...minimal, measure: { embedding: { perplexity: 30 } } });
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toContain('measure.embedding');
    expect(unknown[0]).toContain('perplexity');
  });

  test('an unknown field is named', () => {
    const p = problems({ ...minimal, lockstpe: true });
    expect(p).toHaveLength(1);
    expect(p[0]).toContain('lockstpe');
    const q = problems({
      ...minimal,
      perturbations: [{ kind: 'init', sigmas: [1] }],
    });
    expect(q).toHaveLength(1);
    expect(q[0]).toContain('perturbations[0]');
    expect(q[0]).toContain('sigmas');
  });

  test('duplicate fork steps are rejected per perturbation', () => {
    const p = problems({
      ...minimal,
      perturbations: [
        { kind: 'gaussian', sigmas: [0], forkSteps: [0, 10, 0] },
        { kind: 'seed', forkSteps: [{ epochs: 1 }, { epochs: 1 }] },
      ],
    });
    expect(p).toEqual([
      'perturbations[0].forkSteps: contains duplicates',
      'perturbations[1].forkSteps: contains duplicates',
    ]);
  });

  test('a gaussian or batch onset search without σ values is rejected', () => {
    for (const kind of ['gaussian', 'batch']) {
      const p = problems({ ...minimal, onset: { kind } }, 'o.json');
      expect(p).toHaveLength(1);
      expect(p[0]).toMatch(/^o\.json: onset\.sigmas: missing/);
    }
  });

  test('an invalid inline base names base.<field>', () => {
    const p = problems({ ...minimal, base: { ...base, optimizer: { kind: 'sgd', lr: -0.1 } } }, 'b.json');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^b\.json: base\.optimizer\.lr: /);
  });

  test('non-objects are rejected', () => {
    expect(problems([1, 2])).toEqual(['expected a JSON object at top level (got an array)']);
    expect(problems(null, 'x.json')).toEqual(['x.json: expected a JSON object at top level (got null)']);
  });
});

describe('loadStudySpec', () => {
  const root = scratchDir('twinscope-study-spec-');

  test('resolves a base path relative to the study file', () => {
    const dir = join(root, 'studies', 'one');
    mkdirSync(join(dir, 'specs'), { recursive: true });
    writeFileSync(join(dir, 'specs', 'base.json'), JSON.stringify({ ...base, seed: 11 }));
    const path = join(dir, 'study.json');
    writeFileSync(path, JSON.stringify({ ...minimal, base: 'specs/base.json' }));
    // From another working directory: resolution uses the study file's folder.
    const s = loadStudySpec(path);
    expect(s.base.seed).toBe(11);
    expect(s.base.name).toBe('moons-sgd');
    expect(s.seeds).toEqual([11]);
  });

  test('a missing base file is named', () => {
    const path = join(root, 'nobase.json');
    writeFileSync(path, JSON.stringify({ ...minimal, base: 'missing-base.json' }));
    expect(() => loadStudySpec(path)).toThrow(join(root, 'missing-base.json'));
  });

  test('a missing study file is named', () => {
    const path = join(root, 'does-not-exist.json');
    expect(() => loadStudySpec(path)).toThrow(SpecError);
    expect(() => loadStudySpec(path)).toThrow(`${path}: file not found`);
  });

  test('invalid JSON and invalid fields are prefixed with the file', () => {
    const bad = join(root, 'bad.json');
    writeFileSync(bad, '{ "name": ');
    expect(() => loadStudySpec(bad)).toThrow(`${bad}: invalid JSON`);
    const neg = join(root, 'neg.json');
    writeFileSync(
      neg,
      JSON.stringify({ ...minimal, perturbations: [{ kind: 'gaussian', sigmas: [-1], forkSteps: [0] }] }),
    );
    expect(() => loadStudySpec(neg)).toThrow(`${neg}: perturbations[0].sigmas[0]`);
  });
});
