#!/usr/bin/env node
// fuzz-study: flip, truncate and rewrite bytes of every file kind of a small study and sweep, and run
// every command that reads the file on the damaged copy (issue 12, item 7).
//
//   node bench/fuzz-study.mjs [--cases 300] [--seed 1] [--timeout-s 60] [--out SCRATCH]
//                             [--commands-per-case N] [--concurrency 2] [--no-determinism]
//                             [--only 3,17] [--cli PATH/bin/twinscope.js] [--markdown] [--quiet]
//   node bench/fuzz-study.mjs --render SUMMARY.json     (a saved JSON summary as --markdown tables)
//
// It runs the twinscope CLI of this checkout (bin/twinscope.js over dist/: `npm run build` first), or
// the one named by --cli, as child processes, and imports nothing from src/ or dist/.
//
// Setup (about 10 s): a twin study (tiny two-moons MLP, 12 steps, 1 seed, fork steps 0 and 8,
// gaussian twins with σ = 0 and 1e-2; distances, barrier, CKA and a PCA embedding) and a grouped
// linear-regression sweep (2 groups, InPCA), each made once with `twinscope run SPEC --out DIR
// --no-report`, into SCRATCH/pristine/.
//
// A case damages one file: a file kind (round robin over the kinds found, so every kind comes up),
// a concrete file of that kind and a mutation (both seeded):
//   bit-flip       one random bit
//   byte-flips     2 to 16 random bytes XORed with random non-zero values
//   truncate       to a random length below the file's, 0 included
//   rewrite-span   1 to 64 consecutive bytes replaced by random bytes (at least one differs)
//   json-number    JSON files: one numeric leaf changed by a small relative amount (integers by ±1)
//                  and written back with the file's indentation: valid JSON, one wrong number
// Run files are taken from three runs: the study's parent, one of its twins and one sweep run.
// --only reruns single cases by index (a case is the same for the same --seed and CLI build).
//
// Each command that reads the file then runs on a fresh copy of the pristine study with that one
// file damaged, always at the same path (case/ in the lane's folder SCRATCH/l<lane>/, its working
// directory, named by relative paths; outputs are compared with the lane's absolute path, where one
// appears, replaced by lane 0's):
//   inspect RUN, inspect RUN --json, verify RUN, export RUN --to OUT, embed RUN OTHER --method pca
//   and --method inpca (run files); report DIR, run SPEC --out DIR --no-report (a resume), and
//   verify DIR (every file of the study or sweep DIR). --commands-per-case N runs N of them per
//   case instead, the cases of one kind taking the commands in turn (the CI subset uses 1).
// Outcomes:
//   refused  exit 1 or 2 with a line starting `error:` on stderr and no stack trace (`    at …`)
//   correct  exit 0 and the same result as on the pristine copy: stdout (inspect, verify, export,
//            embed; inspect's line giving the damaged file's size left out); for report, report/index.html, the names of report/plots/* and every
//            report/plots/*.vl.json; for export, the Parquet files byte for byte; for embed,
//            embedding.arrow, embedding.json and plots/*.vl.json; for run, every result file outside
//            runs/ equal to the pristine study's, compared by bench/compare-studies.mjs (rows in any
//            order, floats exactly)
//   warned   exit 0 with a different result, and a stderr line or the report page's "Problems"
//            section naming the damaged file (a report that says what it could not use): not
//            silent, so not counted as a failure (never for run: its results stay on disk)
//   WRONG    exit 0 with a different result and no such warning; also `verify` exiting 0 (it
//            passed a damaged file), and exit 0 where the pristine copy is refused
//   UNCLEAR  a non-zero exit without a clear message: no `error:` line, a stack trace, an exit code
//            other than 1 and 2, or a signal
//   HANG     still running after --timeout-s (the process group is killed)
// Baselines are the same commands on the undamaged copy at the same path. With determinism checks
// on (the default) each runs first, in both lanes, and must give the same result, or the harness
// stops; with --no-determinism a baseline runs when a case first needs one (a command exiting 0).
// A `run` baseline must also leave the pristine results unchanged.
//
// Output: one JSON object on stdout (--markdown: tables instead): cases, commands run, timings, the
// outcome counts per file kind × mutation × command, baselines that are refusals themselves, and
// every WRONG, UNCLEAR, HANG (and warned) case with its file, mutation (offsets, lengths, JSON path),
// command, exit code and first stderr line. Progress goes to stderr. Exit status: 0 when no case is
// WRONG, UNCLEAR or HANG, 1 otherwise, 2 on bad usage or when the harness itself fails. Everything
// it writes lives in one folder (in --out, default the system temp folder), removed at the end,
// also on failure or Ctrl-C.
//
// `fuzzStudy(options)` is the same run as a function (test/bench/fuzz-study.test.ts runs a CI-sized
// subset); it resolves with the summary object.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_CLI = join(ROOT, 'bin', 'twinscope.js');
const COMPARE = join(ROOT, 'bench', 'compare-studies.mjs');

const USAGE =
  'usage: node bench/fuzz-study.mjs [--cases 300] [--seed 1] [--timeout-s 60] [--out SCRATCH] ' +
  '[--commands-per-case N] [--concurrency 2] [--no-determinism] [--only 3,17] [--cli PATH] [--markdown] [--quiet]\n' +
  '       node bench/fuzz-study.mjs --render SUMMARY.json';

// ---------------------------------------------------------------------------------------------
// The study and the sweep

/** A two-moons MLP that trains 12 steps in well under a second; checkpoints 0, 4, 8, 12. */
const STUDY_SPEC = {
  name: 'fuzz',
  base: {
    name: 'moons-sgd',
    seed: 0,
    data: { name: 'moons', n: 200, noise: 0.2, testFraction: 0.25, standardize: true },
    model: { kind: 'mlp', hidden: [8, 8], activation: 'relu' },
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    batchSize: 32,
    steps: 12,
    checkpoints: { every: 4 },
  },
  seeds: [0],
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-2], forkSteps: [0, 8], repeats: 1 }],
  measure: {
    distance: {},
    barrier: { alphas: 3, examples: 50 },
    cka: { examples: 50 },
    embedding: { method: 'pca', components: 2 },
  },
  lockstep: true,
  workers: 1,
};

/** Four linear-regression runs (2 decays × 2 seeds), embedded with InPCA one group per decay. */
const SWEEP_SPEC = {
  name: 'fuzz-sweep',
  sweep: {
    base: {
      name: 'lin',
      seed: 0,
      dataSeed: 0,
      data: { name: 'linear-regression', n: 60, dim: 4, decay: 1 },
      model: { kind: 'linear', bias: false, init: { kind: 'normal', std: 0.5 } },
      optimizer: { kind: 'sgd', lr: 0.3 },
      batchSize: 'full',
      steps: 8,
      checkpoints: { every: 2 },
    },
    grid: { 'data.decay': [1, 3], seed: [0, 1] },
  },
  embed: { method: 'inpca', components: 2, examples: 12, groupBy: ['data.decay'] },
  workers: 1,
};

/** The runs whose files are damaged, each with the run it is embedded with (`embed RUN OTHER`). */
const TARGET_RUNS = {
  'study/runs/s0/parent': 'study/runs/s0/t8/gaussian-1e-2-r0',
  'study/runs/s0/t8/gaussian-1e-2-r0': 'study/runs/s0/parent',
  'sweep/runs/1-decay1-seed1': 'sweep/runs/0-decay1-seed0',
};

/** File kinds in the order cases visit them; kinds found that are not listed come after them. */
const KIND_ORDER = [
  'run.json (parent)',
  'run.json (twin)',
  'run.json (sweep run)',
  'checkpoints.arrow',
  'metrics.arrow',
  'results.arrow',
  'measurements/*.arrow',
  'measurements/*.json',
  'embedding.arrow',
  'embedding.json',
  'key.json',
  'status.json',
  'study.json',
  'sweep.json',
  'groups.json',
  'groups.arrow',
];

const MUTATIONS = ['bit-flip', 'byte-flips', 'truncate', 'rewrite-span', 'json-number'];
const OUTCOMES = ['refused', 'correct', 'warned', 'WRONG', 'UNCLEAR', 'HANG'];
const FAILING = new Set(['WRONG', 'UNCLEAR', 'HANG']);

/** The kind of a file, from its path relative to the scratch root ('study/…' or 'sweep/…'). */
function kindOf(rel) {
  const name = basename(rel);
  if (name === 'run.json') {
    if (rel.startsWith('sweep/')) return 'run.json (sweep run)';
    return rel === 'study/runs/s0/parent/run.json' ? 'run.json (parent)' : 'run.json (twin)';
  }
  if (/\/measurements\/[^/]+$/.test(rel)) return `measurements/*${extname(name)}`;
  return name;
}

// ---------------------------------------------------------------------------------------------
// Commands

/**
 * A command: `label` (the table's column), `target` (the run or directory it reads), `argv(c)` for
 * a case folder c, `result` (what is compared: 'stdout', 'report', 'export', 'embed' or 'results')
 * and `verify` (exit 0 means it passed the damaged file).
 */
function runCommands(run, other) {
  const top = run.split('/')[0];
  return [
    { label: 'inspect', target: run, result: 'stdout', argv: (c) => ['inspect', join(c, run)] },
    {
      label: 'inspect --json',
      target: run,
      result: 'stdout',
      argv: (c) => ['inspect', join(c, run), '--json'],
    },
    {
      label: 'verify RUN',
      target: run,
      result: 'stdout',
      verify: true,
      argv: (c) => ['verify', join(c, run)],
    },
    {
      label: 'export',
      target: run,
      result: 'export',
      argv: (c) => ['export', join(c, run), '--to', join(c, 'out', 'export')],
    },
    {
      label: 'embed pca',
      target: run,
      result: 'embed',
      argv: (c) => [
        'embed',
        join(c, run),
        join(c, other),
        '--method',
        'pca',
        '--out',
        join(c, 'out', 'embed'),
      ],
    },
    {
      label: 'embed inpca',
      target: run,
      result: 'embed',
      argv: (c) => [
        'embed',
        join(c, run),
        join(c, other),
        '--method',
        'inpca',
        '--examples',
        top === 'study' ? '40' : '12',
        '--threads',
        '1',
        '--out',
        join(c, 'out', 'embed'),
      ],
    },
  ];
}

function dirCommands(top, specs) {
  return [
    { label: 'report', target: top, result: 'report', argv: (c) => ['report', join(c, top)] },
    {
      label: 'run (resume)',
      target: top,
      result: 'results',
      argv: (c) => [
        'run',
        join(specs, `${top}.json`),
        '--out',
        join(c, top),
        '--no-report',
        '--no-progress',
        '--workers',
        '1',
      ],
    },
    {
      label: 'verify DIR',
      target: top,
      result: 'stdout',
      verify: true,
      argv: (c) => ['verify', join(c, top)],
    },
  ];
}

const COMMAND_ORDER = [
  'inspect',
  'inspect --json',
  'verify RUN',
  'export',
  'embed pca',
  'embed inpca',
  'report',
  'run (resume)',
  'verify DIR',
];

/** Every command that reads the file `rel`. */
function commandsFor(rel, specs) {
  const top = rel.split('/')[0];
  const run = Object.keys(TARGET_RUNS).find((r) => rel.startsWith(`${r}/`));
  return [...(run ? runCommands(run, TARGET_RUNS[run]) : []), ...dirCommands(top, specs)];
}

const commandKey = (command) => `${command.label} ${command.target}`;

// ---------------------------------------------------------------------------------------------
// Seeded randomness: mulberry32, one stream per (seed, purpose, index).

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function streamOf(seed, purpose, index = 0) {
  const digest = createHash('sha256').update(`${seed}/${purpose}/${index}`).digest();
  return mulberry32(digest.readUInt32LE(0));
}

const randInt = (rng, n) => Math.floor(rng() * n); // 0 … n-1
const pick = (rng, xs) => xs[randInt(rng, xs.length)];

function shuffled(rng, xs) {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Mutations: each returns { bytes, detail } from the pristine bytes.

function parseJson(bytes) {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Numeric leaves of a JSON value as [{ path: (string|number)[], value }]. */
function numericLeaves(value, path = [], out = []) {
  if (typeof value === 'number') out.push({ path, value });
  else if (Array.isArray(value)) value.forEach((v, i) => numericLeaves(v, [...path, i], out));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) numericLeaves(v, [...path, k], out);
  return out;
}

function applicableMutations(bytes, rel) {
  if (rel.endsWith('.json')) {
    const parsed = parseJson(bytes);
    if (parsed !== undefined && numericLeaves(parsed).length > 0) return MUTATIONS;
  }
  return MUTATIONS.filter((m) => m !== 'json-number');
}

function mutate(kind, bytes, rng) {
  const size = bytes.length;
  const out = Buffer.from(bytes);
  switch (kind) {
    case 'bit-flip': {
      const offset = randInt(rng, size);
      const bit = randInt(rng, 8);
      out[offset] ^= 1 << bit;
      return { bytes: out, detail: { offset, bit } };
    }
    case 'byte-flips': {
      const k = Math.min(size, 2 + randInt(rng, 15));
      const offsets = new Set();
      while (offsets.size < k) offsets.add(randInt(rng, size));
      const sorted = [...offsets].sort((a, b) => a - b);
      for (const o of sorted) out[o] ^= 1 + randInt(rng, 255);
      return { bytes: out, detail: { offsets: sorted } };
    }
    case 'truncate': {
      const r = rng();
      const length =
        r < 0.15 ? 0 : r < 0.35 ? size - 1 - randInt(rng, Math.min(16, size)) : randInt(rng, size);
      return { bytes: out.subarray(0, length), detail: { length, of: size } };
    }
    case 'rewrite-span': {
      const length = 1 + randInt(rng, Math.min(64, size));
      const offset = randInt(rng, size - length + 1);
      for (let i = 0; i < length; i++) out[offset + i] = randInt(rng, 256);
      if (out.equals(bytes)) out[offset] ^= 0xff;
      return { bytes: out, detail: { offset, length } };
    }
    case 'json-number': {
      const text = bytes.toString('utf8');
      const value = JSON.parse(text);
      const leaf = pick(rng, numericLeaves(value));
      let changed;
      if (Number.isInteger(leaf.value)) changed = leaf.value + (rng() < 0.5 ? -1 : 1);
      else {
        const rel = pick(rng, [1e-9, 1e-6, 1e-3, 1e-1]) * (rng() < 0.5 ? -1 : 1);
        changed = leaf.value * (1 + rel);
        if (changed === leaf.value) changed = leaf.value * (1 + 1e-3);
      }
      let parent = value;
      for (const step of leaf.path.slice(0, -1)) parent = parent[step];
      parent[leaf.path.at(-1)] = changed;
      const indent = /^[[{]\r?\n([ \t]+)/.exec(text)?.[1] ?? (text.includes('\n') ? 2 : 0);
      const written = `${JSON.stringify(value, null, indent)}${text.endsWith('\n') ? '\n' : ''}`;
      return {
        bytes: Buffer.from(written, 'utf8'),
        detail: { path: jsonPath(leaf.path), from: leaf.value, to: changed },
      };
    }
    default:
      throw new Error(`unknown mutation ${kind}`);
  }
}

const jsonPath = (path) =>
  path
    .map((p) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `["${p}"]`))
    .join('');

// ---------------------------------------------------------------------------------------------
// Files

/** Relative paths ('/'-separated) of every file under root/top, report/ and locks left out. */
function listFiles(root, top) {
  const out = [];
  const walk = (rel) => {
    for (const entry of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== 'report' && entry.name !== '.twinscope.lock') walk(path);
      } else if (entry.isFile()) out.push(path);
    }
  };
  walk(top);
  return out.sort();
}

/** Every file under dir, relative, sorted (none when dir does not exist). */
function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name).slice(dir.length + 1))
    .sort();
}

function replaceAll(buffer, from, to) {
  if (from.equals(to)) return buffer;
  let at = buffer.indexOf(from);
  if (at < 0) return buffer;
  const parts = [];
  let start = 0;
  while (at >= 0) {
    parts.push(buffer.subarray(start, at), to);
    start = at + from.length;
    at = buffer.indexOf(from, start);
  }
  parts.push(buffer.subarray(start));
  return Buffer.concat(parts);
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// ---------------------------------------------------------------------------------------------
// Child processes

/** Process groups of the children running now, killed on Ctrl-C of the script. */
const live = new Set();
/** Set on Ctrl-C of the script: no new process starts, and the harness stops. */
let aborted = false;

function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {}
}

/** Run `node args…` in its own process group; resolves with { code, signal, stdout, stderr, timedOut, ms }. */
function runNode(args, { cwd, timeoutMs }) {
  return new Promise((resolvePromise, reject) => {
    if (aborted) {
      reject(new Error('interrupted'));
      return;
    }
    const env = { ...process.env, ORT_DISABLE_TELEMETRY: '1', NO_COLOR: '1' };
    delete env.TWINSCOPE_DEBUG;
    const started = performance.now();
    const child = spawn(process.execPath, args, {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout = [];
    const stderr = [];
    let timedOut = false;
    child.stdout.on('data', (d) => stdout.push(d));
    child.stderr.on('data', (d) => stderr.push(d));
    live.add(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      live.delete(child.pid);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child.pid);
      if (timedOut) killGroup(child.pid); // workers it left behind
      resolvePromise({
        code,
        signal,
        timedOut,
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
        ms: performance.now() - started,
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Results of a command, and their comparison

/**
 * What a finished command produced, normalized to lane 0's path: { code, signal, timedOut, stdout,
 * stderr, outputs } where outputs maps output names to sha256 (report, export, embed) or holds the
 * compare-studies verdict (run).
 */
async function observe(command, proc, ctx, lane) {
  const caseDir = ctx.laneDir(lane);
  const from = Buffer.from(caseDir);
  const to = Buffer.from(ctx.laneDir(0));
  const norm = (text) => text.split(caseDir).join(ctx.laneDir(0));
  const observed = { ...proc, stdout: norm(proc.stdout), stderr: norm(proc.stderr) };
  if (proc.code !== 0 || proc.timedOut) return observed;
  const hashFiles = (dir, keep) => {
    const outputs = {};
    for (const rel of filesUnder(dir)) {
      outputs[rel] = keep(rel) ? sha256(replaceAll(readFileSync(join(dir, rel)), from, to)) : 'present';
    }
    return outputs;
  };
  switch (command.result) {
    case 'report':
      observed.outputs = hashFiles(
        join(caseDir, command.target, 'report'),
        (rel) => rel === 'index.html' || rel.endsWith('.vl.json'),
      );
      observed.problems = reportProblems(join(caseDir, command.target, 'report', 'index.html'));
      break;
    case 'export':
      observed.outputs = hashFiles(join(caseDir, 'out', 'export'), () => true);
      break;
    case 'embed':
      observed.outputs = hashFiles(join(caseDir, 'out', 'embed'), (rel) => /\.(arrow|json)$/.test(rel));
      break;
    case 'results':
      observed.outputs = await compareResults(
        join(ctx.pristine, command.target),
        join(caseDir, command.target),
        ctx,
      );
      break;
  }
  return observed;
}

/** The text of the report page's "Problems" section (what it says it could not use), or ''. */
function reportProblems(page) {
  if (!existsSync(page)) return '';
  const html = readFileSync(page, 'utf8');
  const section = /<section id="status" class="problems">([\s\S]*?)<\/section>/.exec(html)?.[1] ?? '';
  return section
    .replace(/<[^>]+>/g, ' ')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * compare-studies between the pristine study and the case's: { same } or { differs: first
 * difference }. Files under runs/ are inputs (the damaged run files themselves), not results, and
 * are not even read: each side is compared through a folder of links to its other entries.
 */
async function compareResults(pristine, dir, ctx) {
  const view = (from, to) => {
    rmSync(to, { recursive: true, force: true });
    mkdirSync(to, { recursive: true });
    for (const name of readdirSync(from)) {
      if (name !== 'runs' && name !== 'report') symlinkSync(join(from, name), join(to, name));
    }
    return to;
  };
  const lane = dirname(dirname(dir));
  const proc = await runNode(
    [COMPARE, view(pristine, join(lane, 'view-pristine')), view(dir, join(lane, 'view-case')), '--json'],
    { cwd: ctx.scratch, timeoutMs: ctx.timeoutMs },
  );
  let report;
  try {
    report = JSON.parse(proc.stdout);
  } catch {
    const why = proc.timedOut
      ? `ran past ${ctx.timeoutMs / 1000} s`
      : `exit ${proc.code ?? proc.signal}: ${firstLine(proc.stderr) ?? 'no output'}`;
    return { differs: `compare-studies could not compare the results (${why})` };
  }
  const differing = report.files.filter((f) => f.status !== 'same');
  if (differing.length === 0) return { same: true };
  const f = differing[0];
  return {
    differs: `${f.path}: ${f.status}${f.detail ? `: ${f.detail}` : ''}${differing.length > 1 ? ` (+${differing.length - 1} more)` : ''}`,
  };
}

/**
 * undefined when `observed` (exit 0) shows the same result as the baseline, else the first
 * difference. `inspect` lists the size of each run file: the line naming the damaged file (its
 * true, changed size) is left out of the comparison.
 */
function difference(command, observed, baseline, damaged) {
  const lines = (text) => {
    const all = text.split('\n');
    return damaged && command.label.startsWith('inspect')
      ? all.filter((l) => !l.includes(basename(damaged)))
      : all;
  };
  const a = lines(observed.stdout);
  const b = lines(baseline.stdout);
  if (command.result !== 'results' && a.join('\n') !== b.join('\n')) {
    let i = 0;
    while (i < Math.max(a.length, b.length) && a[i] === b[i]) i++;
    return `stdout line ${i + 1}: ${clip(a[i] ?? '(none)')} where the pristine study gives ${clip(b[i] ?? '(none)')}`;
  }
  if (command.result === 'results') return observed.outputs?.differs;
  if (command.result === 'stdout') return undefined;
  const mine = observed.outputs ?? {};
  const theirs = baseline.outputs ?? {};
  for (const name of [...new Set([...Object.keys(mine), ...Object.keys(theirs)])].sort()) {
    if (!(name in mine)) return `${name}: missing`;
    if (!(name in theirs)) return `${name}: written, but not for the pristine study`;
    if (mine[name] !== theirs[name]) return `${name} differs`;
  }
  return undefined;
}

const clip = (text) => JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);

function firstLine(text) {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.find((l) => l.startsWith('error:')) ?? lines[0];
}

/** Whether a non-zero exit is a clear refusal. */
function clearRefusal(observed) {
  const lines = observed.stderr.split('\n');
  return (
    (observed.code === 1 || observed.code === 2) &&
    lines.some((l) => l.startsWith('error:')) &&
    !lines.some((l) => /^\s+at /.test(l))
  );
}

/** The outcome of one command on a damaged copy, with the reason for a non-ok one. */
function classify(command, observed, baseline, damaged) {
  if (observed.timedOut) return { outcome: 'HANG' };
  if (observed.code !== 0) {
    if (clearRefusal(observed)) return { outcome: 'refused' };
    const why =
      observed.code === null
        ? `killed by ${observed.signal}`
        : !observed.stderr.split('\n').some((l) => l.startsWith('error:'))
          ? 'no error: line'
          : observed.code !== 1 && observed.code !== 2
            ? `exit code ${observed.code}`
            : 'stack trace';
    return { outcome: 'UNCLEAR', reason: why };
  }
  if (baseline.code !== 0) {
    return { outcome: 'WRONG', reason: `exit 0 where the pristine study exits ${baseline.code}` };
  }
  if (command.verify) return { outcome: 'WRONG', reason: 'verify passed a damaged file' };
  const diff = difference(command, observed, baseline, damaged);
  if (diff === undefined) return { outcome: 'correct' };
  // Results written to disk (run) stay wrong whatever was said while writing them.
  if (command.result === 'results') return { outcome: 'WRONG', reason: diff };
  const names = (line) => line.includes(damaged) || line.includes(basename(damaged));
  const warning =
    observed.stderr.split('\n').find((l) => l.trim() !== '' && names(l)) ??
    (observed.problems && names(observed.problems) ? `report page: ${clip(observed.problems)}` : undefined);
  return warning
    ? { outcome: 'warned', reason: `${diff}; warned: ${warning}` }
    : { outcome: 'WRONG', reason: diff };
}

// ---------------------------------------------------------------------------------------------
// The harness

/**
 * Fuzz a study and a sweep. Options (all optional): cases (300), seed (1), timeoutS (60),
 * out (folder to make the scratch folder in; default the system temp folder), commandsPerCase
 * (default every command that reads the file), concurrency (2), determinism (true), only (case
 * indices), cli (bin/twinscope.js), log (progress lines; default none).
 */
export async function fuzzStudy(options = {}) {
  const {
    cases = 300,
    seed = 1,
    timeoutS = 60,
    out = tmpdir(),
    commandsPerCase = Infinity,
    concurrency = 2,
    determinism = true,
    only,
    cli = DEFAULT_CLI,
    log = () => {},
  } = options;
  if (!existsSync(cli)) throw new Error(`${cli}: no such file (run npm run build, or pass --cli)`);
  const madeOut = !existsSync(out);
  mkdirSync(out, { recursive: true });
  const scratch = mkdtempSync(join(resolve(out), 'fuzz-study-'));
  const started = performance.now();
  const ctx = {
    scratch,
    pristine: join(scratch, 'pristine'),
    specs: join(scratch, 'specs'),
    timeoutMs: timeoutS * 1000,
    laneDir: (lane) => join(scratch, `l${lane}`, 'case'),
  };
  const lanes = Math.max(1, Math.min(2, concurrency));
  const twinscope = (args, cwd = scratch) => runNode([cli, ...args], { cwd, timeoutMs: ctx.timeoutMs });
  try {
    // 1. The pristine study and sweep.
    mkdirSync(ctx.specs);
    mkdirSync(ctx.pristine);
    for (const [top, spec] of [
      ['study', STUDY_SPEC],
      ['sweep', SWEEP_SPEC],
    ]) {
      writeFileSync(join(ctx.specs, `${top}.json`), `${JSON.stringify(spec, null, 2)}\n`);
    }
    const made = await Promise.all(
      ['study', 'sweep'].map((top) =>
        twinscope([
          'run',
          join(ctx.specs, `${top}.json`),
          '--out',
          join(ctx.pristine, top),
          '--no-report',
          '--no-progress',
          '--workers',
          '1',
        ]),
      ),
    );
    made.forEach((proc, i) => {
      if (proc.code !== 0) {
        throw new Error(
          `making the pristine ${['study', 'sweep'][i]} failed (exit ${proc.code}): ${firstLine(proc.stderr)}`,
        );
      }
    });
    const setupMs = performance.now() - started;
    log(`pristine study and sweep made in ${(setupMs / 1000).toFixed(1)} s`);

    // 2. The cases.
    const files = [...listFiles(ctx.pristine, 'study'), ...listFiles(ctx.pristine, 'sweep')].filter((rel) => {
      const run = /^(study|sweep)\/runs\/(.+)\/[^/]+$/.exec(rel);
      return !run || Object.hasOwn(TARGET_RUNS, dirname(rel));
    });
    const byKind = new Map();
    for (const rel of files) {
      const kind = kindOf(rel);
      if (!byKind.has(kind)) byKind.set(kind, []);
      byKind.get(kind).push(rel);
    }
    const kinds = [
      ...KIND_ORDER.filter((k) => byKind.has(k)),
      ...[...byKind.keys()].filter((k) => !KIND_ORDER.includes(k)).sort(),
    ];
    const pristineBytes = new Map(files.map((rel) => [rel, readFileSync(join(ctx.pristine, rel))]));
    const mutationOrder = new Map(
      kinds.map((kind) => {
        const applicable = MUTATIONS.filter((m) =>
          byKind.get(kind).some((rel) => applicableMutations(pristineBytes.get(rel), rel).includes(m)),
        );
        return [kind, shuffled(streamOf(seed, `mutations ${kind}`), applicable)];
      }),
    );
    const commandOrder = new Map(
      kinds.map((kind) => [kind, shuffled(streamOf(seed, `commands ${kind}`), COMMAND_ORDER)]),
    );
    const indices = only ?? Array.from({ length: cases }, (_, i) => i);
    const plan = indices.map((index) => {
      const rng = streamOf(seed, 'case', index);
      const kind = kinds[index % kinds.length];
      const order = mutationOrder.get(kind);
      const mutation = order[Math.floor(index / kinds.length) % order.length];
      const candidates = byKind
        .get(kind)
        .filter((rel) => applicableMutations(pristineBytes.get(rel), rel).includes(mutation));
      const file = pick(rng, candidates);
      const { bytes, detail } = mutate(mutation, pristineBytes.get(file), rng);
      let commands = commandsFor(file, ctx.specs);
      if (commands.length > commandsPerCase) {
        // A subset: the kind's cases take the commands in turn (in a seeded order), so that
        // successive cases of one kind run different commands.
        const order = commandOrder.get(kind);
        commands.sort((a, b) => order.indexOf(a.label) - order.indexOf(b.label));
        const first = (Math.floor(index / kinds.length) * commandsPerCase) % commands.length;
        commands = [...commands.slice(first), ...commands.slice(0, first)].slice(0, commandsPerCase);
      }
      commands.sort((a, b) => COMMAND_ORDER.indexOf(a.label) - COMMAND_ORDER.indexOf(b.label));
      return { index, kind, file, mutation, detail, bytes, commands };
    });

    // 3. Baselines: every command the cases run, on the pristine copy (in both lanes with determinism).
    const baselineCommands = new Map();
    for (const c of plan)
      for (const command of c.commands) baselineCommands.set(commandKey(command), command);
    const prepare = async (lane, damage) => {
      const dir = ctx.laneDir(lane);
      rmSync(dirname(dir), { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      await Promise.all(
        ['study', 'sweep'].map((top) => cp(join(ctx.pristine, top), join(dir, top), { recursive: true })),
      );
      if (damage) writeFileSync(join(dir, damage.file), damage.bytes);
      return dir;
    };
    const execute = async (command, lane, damage) => {
      const dir = await prepare(lane, damage);
      // Paths relative to the lane's folder, so that what a command records (embed's run labels,
      // and the checksums over them) is the same in both lanes.
      const proc = await twinscope(command.argv(basename(dir)), dirname(dir));
      return observe(command, proc, ctx, lane);
    };
    const baselines = new Map(); // key -> observed, once known
    const pending = new Map(); // key -> Promise<observed>
    const checkBaseline = (key, command, observed) => {
      if (observed.timedOut) throw new Error(`baseline '${key}' ran past ${timeoutS} s`);
      if (observed.code === 0 && command.result === 'results' && !observed.outputs?.same) {
        throw new Error(`baseline '${key}' changed the pristine results: ${observed.outputs?.differs}`);
      }
      const other = baselines.get(key);
      if (other) {
        const diff =
          other.code !== observed.code
            ? `exit ${other.code} vs ${observed.code}`
            : difference(command, observed, other);
        if (diff) throw new Error(`baseline '${key}' is not deterministic: ${diff}`);
      } else baselines.set(key, observed);
      return observed;
    };
    /** The baseline of a command, run now on `lane` if it has not run yet. */
    const baselineOf = (command, lane) => {
      const key = commandKey(command);
      if (!pending.has(key)) {
        pending.set(
          key,
          execute(command, lane).then((observed) => checkBaseline(key, command, observed)),
        );
      }
      return pending.get(key);
    };
    const baselineStarted = performance.now();
    if (determinism) {
      // Every baseline up front, in each lane, and the lanes must agree.
      const jobs = [];
      for (const [key, command] of baselineCommands)
        for (let lane = 0; lane < lanes; lane++) jobs.push({ key, command, lane });
      await runLanes(jobs, lanes, async ({ key, command }, lane) => {
        checkBaseline(key, command, await execute(command, lane));
        pending.set(key, Promise.resolve(baselines.get(key)));
      });
      log(
        `${baselineCommands.size} baselines in ${((performance.now() - baselineStarted) / 1000).toFixed(1)} s`,
      );
    }
    const baselineMs = performance.now() - baselineStarted;

    // 4. The damaged copies. Without the determinism check a baseline runs when a case first
    // needs it: when the command exits 0 on a damaged copy.
    const casesStarted = performance.now();
    const jobs = plan.flatMap((c) => c.commands.map((command) => ({ c, command })));
    const records = [];
    let done = 0;
    const perCase = new Map(plan.map((c) => [c.index, c.commands.length]));
    await runLanes(jobs, lanes, async ({ c, command }, lane) => {
      const observed = await execute(command, lane, c);
      const baseline =
        observed.code === 0 && !observed.timedOut ? await baselineOf(command, lane) : undefined;
      const { outcome, reason } = classify(command, observed, baseline, c.file);
      records.push({ c, command, observed, outcome, reason });
      perCase.set(c.index, perCase.get(c.index) - 1);
      if (perCase.get(c.index) === 0) {
        done++;
        const mine = records.filter((r) => r.c === c).map((r) => r.outcome);
        const counts = OUTCOMES.filter((o) => mine.includes(o)).map(
          (o) => `${o} ${mine.filter((x) => x === o).length}`,
        );
        log(`case ${done}/${plan.length} #${c.index} ${c.file} ${c.mutation}: ${counts.join(', ')}`);
      }
    });
    const casesMs = performance.now() - casesStarted;
    return summarize({
      seed,
      plan,
      records,
      baselines,
      kinds,
      timing: { setupMs, baselineMs, casesMs, totalMs: performance.now() - started },
      timeoutS,
      lanes,
      determinism,
      commandsPerCase,
    });
  } finally {
    for (const pid of live) killGroup(pid);
    rmSync(scratch, { recursive: true, force: true, maxRetries: 3 });
    if (madeOut) rmSync(out, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * Run jobs on `lanes` lanes, one at a time each: fn(job, lane). A job with a `lane` runs on that
 * lane only. Stops at the first error.
 */
async function runLanes(jobs, lanes, fn) {
  const taken = new Array(jobs.length).fill(false);
  let failed;
  const lane = async (index) => {
    for (;;) {
      if (failed !== undefined || aborted) return;
      const next = jobs.findIndex((job, i) => !taken[i] && (job.lane === undefined || job.lane === index));
      if (next < 0) return;
      taken[next] = true;
      try {
        await fn(jobs[next], index);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
  if (aborted) throw new Error('interrupted');
  if (failed !== undefined) throw failed;
}

function summarize({
  seed,
  plan,
  records,
  baselines,
  kinds,
  timing,
  timeoutS,
  lanes,
  determinism,
  commandsPerCase,
}) {
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0]));
  const table = {};
  const byCommand = {};
  for (const r of records) {
    outcomes[r.outcome]++;
    tally(slot(slot(slot(table, r.c.kind), r.c.mutation), r.command.label), r.outcome);
    tally(slot(byCommand, r.command.label), r.outcome);
  }
  // Kinds, mutations and commands in their fixed orders (records arrive in completion order).
  const ordered = (object, order) =>
    Object.fromEntries(Object.entries(object).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)));
  for (const kind of Object.keys(table)) {
    for (const mutation of Object.keys(table[kind]))
      table[kind][mutation] = ordered(table[kind][mutation], COMMAND_ORDER);
    table[kind] = ordered(table[kind], MUTATIONS);
  }
  const sortedTable = ordered(table, kinds);
  const sortedByCommand = ordered(byCommand, COMMAND_ORDER);
  const detail = (r) => ({
    case: r.c.index,
    kind: r.c.kind,
    file: r.c.file,
    mutation: r.c.mutation,
    ...r.c.detail,
    command: r.command.label,
    target: r.command.target,
    outcome: r.outcome,
    exit: r.observed.timedOut ? 'timeout' : (r.observed.code ?? r.observed.signal),
    stderr: firstLine(r.observed.stderr) ?? '',
    ...(r.reason && { reason: r.reason }),
  });
  const sortKey = (r) => r.c.index * 100 + COMMAND_ORDER.indexOf(r.command.label);
  const sorted = [...records].sort((a, b) => sortKey(a) - sortKey(b));
  const refusedBaselines = {};
  for (const [key, b] of [...baselines].sort()) {
    if (b.code !== 0) refusedBaselines[key] = { exit: b.code, stderr: firstLine(b.stderr) ?? '' };
  }
  const refusals = sorted.filter((r) => r.outcome === 'refused');
  const notNaming = refusals.filter(
    (r) => !`${r.observed.stderr}\n${r.observed.stdout}`.includes(basename(r.c.file)),
  );
  return {
    ok: !records.some((r) => FAILING.has(r.outcome)),
    seed,
    cases: plan.length,
    commands: records.length,
    settings: {
      timeoutS,
      concurrency: lanes,
      determinism,
      commandsPerCase: Number.isFinite(commandsPerCase) ? commandsPerCase : 'all',
    },
    seconds: {
      total: round(timing.totalMs / 1000),
      setup: round(timing.setupMs / 1000),
      baselines: round(timing.baselineMs / 1000),
      cases: round(timing.casesMs / 1000),
      perCase: round(timing.casesMs / 1000 / Math.max(1, plan.length)),
      perCommand: round(records.reduce((s, r) => s + r.observed.ms, 0) / 1000 / Math.max(1, records.length)),
    },
    kinds: Object.fromEntries(kinds.map((k) => [k, plan.filter((c) => c.kind === k).length])),
    outcomes,
    byCommand: sortedByCommand,
    table: sortedTable,
    refusedBaselines,
    refusalsNotNamingFile: notNaming.length,
    refusalsNotNamingFileExamples: notNaming.slice(0, 10).map(detail),
    messages: topMessages(refusals),
    failures: sorted.filter((r) => FAILING.has(r.outcome)).map(detail),
    warned: sorted.filter((r) => r.outcome === 'warned').map(detail),
  };
}

/**
 * The refusals' first error lines with counts, most frequent first (40 at most), with digests,
 * numbers and quoted values replaced by '…' so that one message counts once.
 */
function topMessages(refusals) {
  const counts = new Map();
  for (const r of refusals) {
    const line = (firstLine(r.observed.stderr) ?? '')
      .replace(/[0-9a-f]{16,}/g, '…')
      .replace(/'[^']*'/g, "'…'")
      .replace(/"[^"]*"/g, '"…"')
      .replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/gi, '…');
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, 40));
}

/** object[key], made an empty object first when missing. */
function slot(object, key) {
  if (!Object.hasOwn(object, key)) object[key] = {};
  return object[key];
}

function tally(counts, outcome) {
  counts[outcome] = (counts[outcome] ?? 0) + 1;
}

const round = (x) => Math.round(x * 100) / 100;

// ---------------------------------------------------------------------------------------------
// Command line

function markdown(summary) {
  const lines = [];
  const o = summary.outcomes;
  lines.push(
    `${summary.cases} cases, ${summary.commands} commands (seed ${summary.seed}), ${summary.seconds.total} s ` +
      `(${summary.seconds.perCase} s per case, ${summary.seconds.perCommand} s per command)`,
    '',
    `| outcome | ${OUTCOMES.join(' | ')} |`,
    `| --- | ${OUTCOMES.map(() => '---:').join(' | ')} |`,
    `| all commands | ${OUTCOMES.map((x) => o[x]).join(' | ')} |`,
  );
  for (const label of COMMAND_ORDER) {
    const row = summary.byCommand[label];
    if (row) lines.push(`| ${label} | ${OUTCOMES.map((x) => row[x] ?? 0).join(' | ')} |`);
  }
  lines.push(
    '',
    `| file kind | mutation | ${OUTCOMES.join(' | ')} |`,
    `| --- | --- | ${OUTCOMES.map(() => '---:').join(' | ')} |`,
  );
  for (const [kind, byMutation] of Object.entries(summary.table)) {
    for (const [mutation, byCmd] of Object.entries(byMutation)) {
      const counts = OUTCOMES.map((x) => Object.values(byCmd).reduce((s, c) => s + (c[x] ?? 0), 0));
      lines.push(`| ${kind} | ${mutation} | ${counts.join(' | ')} |`);
    }
  }
  const labels = COMMAND_ORDER.filter((label) => summary.byCommand[label]);
  const cell = (counts) => {
    const bad = ['WRONG', 'UNCLEAR', 'HANG'].filter((x) => counts?.[x]).map((x) => `${counts[x]} ${x}`);
    const ok = (counts?.refused ?? 0) + (counts?.correct ?? 0) + (counts?.warned ?? 0);
    return counts ? [ok > 0 ? `${ok} ok` : '', ...bad].filter(Boolean).join(', ') : '';
  };
  lines.push('', `| file kind | ${labels.join(' | ')} |`, `| --- | ${labels.map(() => '---').join(' | ')} |`);
  for (const [kind, byMutation] of Object.entries(summary.table)) {
    const merged = {};
    for (const byCmd of Object.values(byMutation)) {
      for (const [label, counts] of Object.entries(byCmd)) {
        for (const [outcome, n] of Object.entries(counts)) {
          const target = slot(merged, label);
          target[outcome] = (target[outcome] ?? 0) + n;
        }
      }
    }
    lines.push(`| ${kind} | ${labels.map((label) => cell(merged[label])).join(' | ')} |`);
  }
  if (Object.keys(summary.refusedBaselines).length > 0) {
    lines.push('', 'Refused on the pristine copy too:', '');
    for (const [key, b] of Object.entries(summary.refusedBaselines))
      lines.push(`- \`${key}\`: exit ${b.exit}, ${b.stderr}`);
  }
  for (const [title, list] of [
    ['WRONG, UNCLEAR and HANG', summary.failures],
    ['warned', summary.warned],
  ]) {
    if (list.length === 0) continue;
    lines.push(
      '',
      `${title}:`,
      '',
      '| case | file | mutation | command | outcome | exit | why |',
      '| --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const f of list) {
      const {
        case: index,
        kind,
        file,
        mutation,
        command,
        target,
        outcome,
        exit,
        stderr,
        reason,
        ...rest
      } = f;
      const where = JSON.stringify(rest).replaceAll('|', '\\|');
      const why = (reason ?? stderr).replaceAll('|', '\\|');
      lines.push(
        `| ${index} | ${file} | ${mutation} ${where} | ${command} | ${outcome} | ${exit} | ${why} |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

function parseArgs(argv) {
  const options = {};
  let markdownOut = false;
  let quiet = false;
  let render;
  const number = (name, text, min) => {
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value < min)
      throw new Error(
        `${name} needs a number >= ${min}, got ${text === undefined ? 'nothing' : `'${text}'`}`,
      );
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--cases') options.cases = Math.floor(number(arg, argv[++i], 1));
    else if (arg === '--seed') options.seed = Math.floor(number(arg, argv[++i], 0));
    else if (arg === '--timeout-s') options.timeoutS = number(arg, argv[++i], 1);
    else if (arg === '--commands-per-case') options.commandsPerCase = Math.floor(number(arg, argv[++i], 1));
    else if (arg === '--concurrency') options.concurrency = Math.floor(number(arg, argv[++i], 1));
    else if (arg === '--out') options.out = argv[++i];
    else if (arg === '--cli') options.cli = resolve(argv[++i] ?? '');
    else if (arg === '--only')
      options.only = (argv[++i] ?? '').split(',').map((s) => Math.floor(number('--only', s, 0)));
    else if (arg === '--no-determinism') options.determinism = false;
    else if (arg === '--markdown') markdownOut = true;
    else if (arg === '--render') render = argv[++i];
    else if (arg === '--quiet') quiet = true;
    else if (arg === '-h' || arg === '--help') return { help: true };
    else throw new Error(`unknown argument '${arg}'`);
    if (options.out === undefined && arg === '--out') throw new Error('--out needs a folder');
    if (arg === '--render' && render === undefined) throw new Error('--render needs a JSON file');
  }
  return { options, markdownOut, quiet, render };
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz-study: ${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.render !== undefined) {
    const saved = JSON.parse(readFileSync(args.render, 'utf8'));
    process.stdout.write(markdown(saved));
    return saved.ok ? 0 : 1;
  }
  const stop = (signal) => {
    aborted = true;
    for (const pid of live) killGroup(pid);
    process.stderr.write(`fuzz-study: ${signal}; stopping (the scratch folder is removed)\n`);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  let summary;
  try {
    summary = await fuzzStudy({
      ...args.options,
      log: args.quiet ? () => {} : (line) => process.stderr.write(`${line}\n`),
    });
  } catch (e) {
    process.stderr.write(`fuzz-study: ${e.message}\n`);
    return 2;
  }
  process.stdout.write(args.markdownOut ? markdown(summary) : `${JSON.stringify(summary, null, 2)}\n`);
  return summary.ok ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main();
}
