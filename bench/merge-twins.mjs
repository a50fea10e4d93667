#!/usr/bin/env node
// merge-twins: when can twins be merged? Merged accuracy against σ and fork step t.
//
//   npx twinscope run pipelines/merge-twins-mnist.json --out studies/merge-twins-mnist --workers 1
//   node bench/merge-twins.mjs studies/merge-twins-mnist [--out DIR] [--align weight] [--json]
//
// For every twin pair (A, B) of a finished twin study it runs
//   twinscope merge A B --data BASE --out DIR/<pair>.onnx --json                (the plain midpoint)
//   twinscope merge A B --data BASE --out DIR/<pair>-aligned.onnx --align weight --json
// where A and B are the pair's run directories (their last checkpoint) and BASE is the study's base
// run spec (written to DIR/base.json: its data and data seed), and prints one table row per pair:
// kind, σ, fork step t, the endpoints' test accuracy, the pair's test error barrier as the study
// measured it (linear convention, final step, from results.arrow) with the pair's final L2, and the merged test accuracy
// without and with weight matching. `--align activation` aligns by activation matching instead.
// DIR defaults to STUDY/merges. It runs bin/twinscope.js of this checkout (dist/ must be built).
//
// Plain Node ESM: node: builtins and apache-arrow only (the study's results are read from its files).

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { tableFromIPC } from 'apache-arrow';

const USAGE = 'usage: node bench/merge-twins.mjs STUDY_DIR [--out DIR] [--align weight|activation] [--json]';
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'twinscope.js');

function parseArgs(argv) {
  const args = { study: undefined, out: undefined, align: 'weight', json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--out') args.out = argv[++i];
    else if (a === '--align') args.align = argv[++i];
    else if (a.startsWith('--') || args.study !== undefined) {
      console.error(USAGE);
      process.exit(2);
    } else args.study = a;
  }
  if (args.study === undefined || !['weight', 'activation'].includes(args.align)) {
    console.error(USAGE);
    process.exit(2);
  }
  return args;
}

/**
 * What the study measured of each pair at its last measured step, keyed `runA|runB`: `barrier`, the
 * test error barrier (linear convention), and `l2`, ‖θ_A − θ_B‖ of the whole weight vector.
 */
function measured(studyDir) {
  const table = tableFromIPC(readFileSync(join(studyDir, 'results.arrow')));
  const out = { barrier: new Map(), l2: new Map() };
  for (const row of table.toArray()) {
    const r = row.toJSON();
    let into;
    if (r.metric === 'error_barrier' && r.split === 'test') {
      if (JSON.parse(r.options).convention === 'linear') into = out.barrier;
    } else if (r.metric === 'l2' && r.layer === null) into = out.l2;
    if (!into) continue;
    const key = `${r.run_a}|${r.run_b}`;
    const step = Number(r.step);
    const prev = into.get(key);
    if (!prev || step > prev.step) into.set(key, { step, value: r.value });
  }
  return out;
}

function merge(a, b, data, out, extra) {
  const stdout = execFileSync(
    process.execPath,
    [CLI, 'merge', a, b, '--data', data, '--out', out, '--json', ...extra],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return JSON.parse(stdout);
}

const args = parseArgs(process.argv.slice(2));
const study = JSON.parse(readFileSync(join(args.study, 'study.json'), 'utf8'));
const outDir = args.out ?? join(args.study, 'merges');
mkdirSync(outDir, { recursive: true });
const data = join(outDir, 'base.json');
writeFileSync(data, `${JSON.stringify(study.spec.base, null, 2)}\n`);
const { barrier, l2 } = measured(args.study);
const run = (name) => join(args.study, 'runs', name);

const rows = [];
for (const twin of study.twins) {
  const stem = twin.runB.replaceAll('/', '_');
  const t0 = Date.now();
  const plain = merge(run(twin.runA), run(twin.runB), data, join(outDir, `${stem}.onnx`), []);
  const aligned = merge(run(twin.runA), run(twin.runB), data, join(outDir, `${stem}-aligned.onnx`), [
    '--align',
    args.align,
  ]);
  const b = barrier.get(`${twin.runA}|${twin.runB}`);
  const d = l2.get(`${twin.runA}|${twin.runB}`);
  const row = {
    runA: twin.runA,
    runB: twin.runB,
    kind: twin.kind,
    sigma: twin.sigma,
    t: twin.forkStep,
    testAccA: plain.endpoints[0].test.accuracy,
    testAccB: plain.endpoints[1].test.accuracy,
    errorBarrier: b ? b.value : null,
    barrierStep: b ? b.step : null,
    l2: d ? d.value : null,
    merged: plain.merged.test.accuracy,
    mergedAligned: aligned.merged.test.accuracy,
    mergedLoss: plain.merged.test.loss,
    mergedAlignedLoss: aligned.merged.test.loss,
    seconds: (Date.now() - t0) / 1000,
  };
  rows.push(row);
  if (!args.json) console.error(`${twin.runA} ~ ${twin.runB}: ${row.seconds.toFixed(1)} s`);
}

const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(2)} %`);
const pts = (v) => (v === null || v === undefined ? '—' : (100 * v).toFixed(2));
if (args.json) {
  console.log(JSON.stringify({ study: args.study, align: args.align, rows }, null, 2));
} else {
  const steps = study.stepsPerEpoch;
  const tLabel = (t) =>
    t > 0 && t % steps === 0 ? `${t} (${t / steps} epoch${t / steps > 1 ? 's' : ''})` : `${t}`;
  console.log(
    `| kind | σ | t | L2 | test acc A | test acc B | test error barrier (points) | merged | merged, ${args.align}-aligned |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const sigma = r.kind === 'init' ? '—' : String(r.sigma);
    const t = r.kind === 'init' ? '—' : tLabel(r.t);
    console.log(
      `| ${r.kind} | ${sigma} | ${t} | ${r.l2 === null ? '—' : r.l2.toFixed(2)} | ${pct(r.testAccA)} | ${pct(r.testAccB)} | ${pts(r.errorBarrier)} | ${pct(r.merged)} | ${pct(r.mergedAligned)} |`,
    );
  }
}
