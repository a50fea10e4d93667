/**
 * `twinscope export RUN_DIR[@STEP] --format onnx`: a standard ONNX model (opset 17, initializers)
 * that onnxruntime loads unchanged and that gives twinscope's own logits (the ORT engine's
 * `predictions`), and whose import gives back the checkpoint's weights bit for bit.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { readRunCheckpointModel } from '../../src/onnx/export-model.js';
import { importOnnxFile } from '../../src/onnx/import-model.js';
import { decodeModel, toNumber } from '../../src/onnx/proto.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { runContextParts, trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-onnx-export-');
const runDir = join(root, 'run');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);

const spec = parseRunSpec({
  name: 'export',
  seed: 3,
  data: { name: 'moons', n: 200, noise: 0.2, testFraction: 0.2, standardize: true },
  model: { kind: 'mlp', hidden: [7, 5] },
  optimizer: { kind: 'adam', lr: 0.02 },
  batchSize: 40,
  steps: 20,
  checkpoints: { every: 10 },
});

beforeAll(async () => {
  await trainRun(spec, runDir);
}, 60_000);

async function exportTo(target: string, file: string): Promise<void> {
  const io = capture();
  expect(await cli(io, 'export', target, '--format', 'onnx', '--out', file), io.err).toBe(EXIT_OK);
  expect(io.out).toContain(file);
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('twinscope export --format onnx', () => {
  test('a standard opset-17 model with initializers, a dynamic batch axis and named nodes', async () => {
    const file = join(root, 'last.onnx');
    await exportTo(runDir, file);
    const model = decodeModel(readFileSync(file), file);
    expect(model.opsetImport?.map((o) => [o.domain, toNumber(o.version as number)])).toEqual([['', 17]]);
    expect(model.producerName).toBe('twinscope');
    const graph = model.graph as NonNullable<typeof model.graph>;
    expect(graph.input?.map((v) => v.name)).toEqual(['input']);
    expect(graph.output?.map((v) => v.name)).toEqual(['logits']);
    expect(graph.input?.[0]?.type?.tensorType?.shape?.dim?.[0]?.dimParam).toBe('N');
    expect(graph.initializer?.map((t) => t.name)).toEqual([
      'dense0.weight',
      'dense0.bias',
      'dense1.weight',
      'dense1.bias',
      'dense2.weight',
      'dense2.bias',
    ]);
    expect(graph.node?.map((n) => n.name)).toContain('/dense1/Relu');
  });

  test('onnxruntime runs the file unchanged and gives the ORT engine predictions (bit for bit here)', async () => {
    const file = join(root, 'step10.onnx');
    await exportTo(`${runDir}@10`, file);
    const { model, checkpoint } = readRunCheckpointModel(runDir, 10);
    expect(checkpoint.step).toBe(10);
    const { data } = runContextParts(spec);
    const { x, n } = data.test;
    const engine = await createOrtEngine(model, { optimizer: spec.optimizer });
    const session = await ort.InferenceSession.create(file);
    try {
      const expected = (await engine.predictions?.(checkpoint.params, x, n)) as Float32Array;
      const out = await session.run({ input: new ort.Tensor('float32', x, [n, model.inputDim]) });
      const got = out.logits?.data as Float32Array;
      expect(got.length).toBe(expected.length);
      let worst = 0;
      for (let i = 0; i < got.length; i++)
        worst = Math.max(worst, Math.abs((got[i] as number) - (expected[i] as number)));
      expect(worst).toBeLessThan(1e-5);
      expect(bits(got)).toEqual(bits(expected));
    } finally {
      await engine.dispose();
      await session.release();
    }
  });

  test('importing the file gives back the checkpoint weights bit for bit, with twinscope names', async () => {
    const file = join(root, 'reimport.onnx');
    await exportTo(`${runDir}@20`, file);
    const imported = importOnnxFile(file);
    const { model, checkpoint } = readRunCheckpointModel(runDir, 20);
    expect(bits(imported.weights)).toEqual(bits(checkpoint.params));
    expect(imported.architecture.layout.tensors.map((t) => [t.name, t.shape, t.offset])).toEqual(
      model.layout.tensors.map((t) => [t.name, t.shape, t.offset]),
    );
    expect(imported.architecture.hidden.map((h) => h.name)).toEqual(['dense0', 'dense1']);
  });

  test('bad input exits 2: no --out, a step without a checkpoint, --out with parquet', async () => {
    for (const args of [
      ['export', runDir, '--format', 'onnx'],
      ['export', `${runDir}@7`, '--format', 'onnx', '--out', join(root, 'x.onnx')],
      ['export', runDir, '--format', 'parquet', '--out', join(root, 'x.onnx')],
      ['export', join(root, 'nope'), '--format', 'onnx', '--out', join(root, 'x.onnx')],
    ]) {
      const io = capture();
      expect(await cli(io, ...args), args.join(' ')).toBe(EXIT_USAGE);
      expect(io.err).toMatch(/error: /);
    }
    const io = capture();
    await cli(io, 'export', `${runDir}@7`, '--format', 'onnx', '--out', join(root, 'x.onnx'));
    expect(io.err).toContain('no checkpoint at step 7 (it has 0, 10, 20)');
  });
});
