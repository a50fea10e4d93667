#!/usr/bin/env node
// finalize-cost: what finishing a run costs (RunWriter.finalize turns each Arrow IPC stream into an
// IPC file), from dist/ (run `npm run build` first). docs/performance.md, "Finalizing a run".
//
//   node bench/finalize-cost.mjs [--checkpoints 25] [--hidden 256] [--repeats 4]
//
// Writes a run's stream files as training does (MLP 784-H-H-10 with one optimizer slot, as SGD with
// momentum keeps; one metrics batch per checkpoint) and finalizes them two ways, interleaved:
// - `copy`: RunWriter.finalize, which copies the stream behind the file magic and appends a footer;
// - `reencode`: the former method, every record batch decoded into a table and re-encoded by
//   apache-arrow's tableToIPC(table, 'file'), then written the same way (temp file, fsync, rename).
// Prints JSON: medians of wall and process CPU time per mode, the ratio, the file sizes, and whether
// both files decode to the same checkpoints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableToIPC } from 'apache-arrow';

const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const { openRunWriter, readCheckpoints } = await dist('store/index.js');
const { decodeBatches, openStoreFile } = await dist('store/reader.js');
const { writeFileAtomic } = await dist('util/atomic-file.js');
const { modelGraphSpec } = await dist('model/graph.js');
const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const nCheckpoints = arg('--checkpoints', 25);
const hidden = arg('--hidden', 256);
const repeats = arg('--repeats', 4);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const model = modelGraphSpec({ kind: 'mlp', hidden: [hidden, hidden] }, 784, 10, 'cross-entropy');
const params = Float32Array.from({ length: model.layout.size }, (_, i) => Math.sin(i));

/** A run folder holding the stream files of `nCheckpoints` checkpoints, and its writer. */
async function streams(root, name) {
  const dir = join(root, name);
  const { writer } = await openRunWriter(dir, model.layout, 1);
  for (let k = 0; k < nCheckpoints; k++) {
    writer.appendMetrics([
      {
        step: k,
        epoch: 0,
        kind: 'step',
        lr: 0.1,
        trainLoss: 1,
        batchHash: 'b',
        trainEvalLoss: null,
        trainAcc: null,
        testLoss: null,
        testAcc: null,
      },
    ]);
    const p = params.map((v) => v + k);
    writer.appendCheckpoint({ step: k, epoch: 0, params: p, opt: { step: k, slots: [p] } });
  }
  return { dir, writer };
}

function reencode(dir) {
  for (const name of ['checkpoints.arrow', 'metrics.arrow']) {
    const opened = openStoreFile(join(dir, name));
    writeFileAtomic(opened.file, [tableToIPC(decodeBatches(opened), 'file')]);
  }
}

async function timed(f) {
  const c = process.cpuUsage();
  const t = performance.now();
  await f();
  const wall = performance.now() - t;
  const cpu = process.cpuUsage(c);
  return { wall, cpu: (cpu.user + cpu.system) / 1000 };
}

const root = mkdtempSync(join(tmpdir(), 'twinscope-finalize-cost-'));
try {
  const runs = { copy: [], reencode: [] };
  let same;
  let bytes;
  for (let r = 0; r < repeats; r++) {
    const a = await streams(root, `copy-${r}`);
    const b = await streams(root, `reencode-${r}`);
    let files;
    runs.copy.push(await timed(async () => (files = await a.writer.finalize())));
    b.writer.close();
    runs.reencode.push(await timed(() => reencode(b.dir)));
    if (r === 0) {
      bytes = { copy: files['checkpoints.arrow'].bytes };
      const x = readCheckpoints(a.dir);
      const y = readCheckpoints(b.dir);
      same =
        x.length === y.length &&
        x.every(
          (c, i) => Buffer.compare(Buffer.from(c.params.buffer), Buffer.from(y[i].params.buffer)) === 0,
        );
    }
    rmSync(a.dir, { recursive: true });
    rmSync(b.dir, { recursive: true });
  }
  const summary = (xs) => ({ wallMs: median(xs.map((x) => x.wall)), cpuMs: median(xs.map((x) => x.cpu)) });
  const copy = summary(runs.copy);
  const re = summary(runs.reencode);
  console.log(
    JSON.stringify(
      {
        model: `mlp-784-${hidden}-${hidden}-10`,
        checkpoints: nCheckpoints,
        checkpointsBytes: bytes.copy,
        copy,
        reencode: re,
        speedup: { wall: re.wallMs / copy.wallMs, cpu: re.cpuMs / copy.cpuMs },
        sameCheckpoints: same,
      },
      null,
      2,
    ),
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
