#!/usr/bin/env node
// integrity-cost: the "Cost" table of docs/reliability.md, "Integrity on every read": what checking a
// file before reading it adds to reading it, from dist/ (run `npm run build` first).
//
//   node bench/integrity-cost.mjs [--rows 200000] [--repeats 7]
//
// Writes, in one temporary folder removed at the end: a results file of --rows rows (the long-form
// results.arrow of src/results/rows.ts) and a run.json-sized sealed JSON document. Prints JSON: per
// case the median time of the unchecked read, of the check alone and their ratio (the check's
// share of a read), over --repeats repetitions, interleaved so that machine load hits both alike.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dist = (m) => import(new URL(`../dist/${m}`, import.meta.url).href);
const { readResults, writeResults } = await dist('results/rows.js');
const { checkDigest } = await dist('util/file-digest.js');
const { readSealedJson, writeSealedJson } = await dist('util/sealed-json.js');
const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
};
const nRows = arg('--rows', 200_000);
const repeats = arg('--repeats', 7);
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const time = (f) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};

const root = mkdtempSync(join(tmpdir(), 'twinscope-integrity-cost-'));
try {
  const rows = Array.from({ length: nRows }, (_, i) => ({
    study: 'bench',
    runA: `s0/t${i % 50}/a`,
    runB: `s0/t${i % 50}/gaussian-1e-4-r${i % 3}`,
    step: i % 1000,
    metric: ['l2', 'loss_barrier', 'cka'][i % 3],
    layer: i % 3 === 2 ? 'dense0' : null,
    split: i % 3 === 1 ? 'test' : null,
    value: Math.sin(i),
    options: { convention: 'linear', alphas: 11, examples: 1000 },
  }));
  const resultsPath = join(root, 'results.arrow');
  const digest = writeResults(resultsPath, rows);
  // A run.json-sized document: spec, layout of 20 tensors, 200 checkpoint steps.
  const doc = {
    format: 2,
    spec: { name: 'x', model: { kind: 'mlp', hidden: [256, 256] }, optimizer: { kind: 'adam', lr: 1e-3 } },
    checkpointSteps: Array.from({ length: 200 }, (_, i) => i * 10),
    layout: {
      tensors: Array.from({ length: 20 }, (_, i) => ({
        name: `dense${i}.weight`,
        shape: [256, 256],
        offset: i * 65536,
      })),
    },
  };
  const jsonPath = join(root, 'run.json');
  writeSealedJson(jsonPath, doc);
  const cases = {
    [`results.arrow (${nRows} rows, ${(digest.bytes / 2 ** 20).toFixed(1)} MiB)`]: {
      read: () => readResults(resultsPath),
      check: () => checkDigest(resultsPath, digest, 'bench'),
    },
    [`run.json (${readFileSync(jsonPath).length} bytes)`]: {
      read: () => JSON.parse(readFileSync(jsonPath, 'utf8')),
      check: () => readSealedJson(jsonPath),
    },
  };
  const out = { command: `node bench/integrity-cost.mjs --rows ${nRows} --repeats ${repeats}`, cases: {} };
  for (const [name, c] of Object.entries(cases)) {
    c.read();
    c.check();
    const read = [];
    const check = [];
    for (let r = 0; r < repeats; r++) {
      read.push(time(c.read));
      check.push(time(c.check));
    }
    const [rm, cm] = [median(read), median(check)];
    out.cases[name] = {
      readMs: +rm.toFixed(2),
      checkMs: +cm.toFixed(2),
      checkOverRead: +(cm / rm).toFixed(3),
    };
  }
  console.log(JSON.stringify(out, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
}
