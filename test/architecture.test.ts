/**
 * The import graph of src/ (static and dynamic imports, type-only ones too) follows the one-way data
 * flow of docs/architecture.md: a folder imports only folders of a lower stage, the report reads
 * study directories through results/ only, and no two files import each other, directly or not.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, test } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/**
 * Stages from the bottom up (docs/architecture.md, "Import rules"): a file may import files of its
 * own folder and of folders in earlier stages. Files directly under src/ are named by base name.
 */
const STAGES: readonly (readonly string[])[] = [
  ['util', 'version', 'rng'],
  ['data'],
  ['model'],
  ['engine'],
  ['spec'],
  ['store'],
  ['train'],
  ['measure'],
  ['onnx'],
  ['results'],
  ['exec'],
  ['study'],
  ['report', 'export', 'bench'],
  ['cli'],
  ['index'],
];

/** Imports allowed by the stages but ruled out on purpose. */
const FORBIDDEN: Readonly<Record<string, readonly string[]>> = {
  // The report draws figures from the files a run left (read through results/), never from runners.
  report: ['study', 'exec'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** The module a src/ file belongs to: its top folder, or its base name for files directly in src/. */
function moduleOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length === 1 ? (parts[0] as string).replace(/\.ts$/, '') : (parts[0] as string);
}

const stageOf = (module: string) => STAGES.findIndex((s) => s.includes(module));

/** Relative imports of every src/ file, resolved to src/ files. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const deps = info.importedFiles
      .map((f) => f.fileName)
      .filter((name) => name.startsWith('.'))
      .map((name) => normalize(join(dirname(file), name)).replace(/\.js$/, '.ts'));
    graph.set(file, [...new Set(deps)]);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('architecture: the import graph of src/', () => {
  const graph = importGraph();
  const name = (f: string) => relative(SRC, f);

  test('every module has a stage, and every relative import resolves to a src/ file', () => {
    const modules = new Set([...graph.keys()].map(moduleOf));
    expect([...modules].filter((m) => stageOf(m) < 0)).toEqual([]);
    const unresolved = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => !graph.has(d)).map((d) => `${name(f)} -> ${d}`),
    );
    expect(unresolved).toEqual([]);
  });

  test('imports go down the stages only (docs/architecture.md, "Import rules")', () => {
    const violations: string[] = [];
    for (const [file, deps] of graph) {
      const from = moduleOf(file);
      for (const dep of deps) {
        const to = moduleOf(dep);
        if (to === from) continue;
        if (stageOf(to) >= stageOf(from) || FORBIDDEN[from]?.includes(to)) {
          violations.push(`${name(file)} -> ${name(dep)}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  test('no import cycles between files', () => {
    expect(cycles(graph).map((c) => c.map(name).sort())).toEqual([]);
  });

  test('the checks catch a violation and a cycle (synthetic graph)', () => {
    const a = join(SRC, 'store', 'a.ts');
    const b = join(SRC, 'store', 'b.ts');
    expect(
      cycles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ).map((c) => c.map(name).sort()),
    ).toEqual([['store/a.ts', 'store/b.ts']]);
    expect(stageOf('train') > stageOf('store')).toBe(true);
    expect(stageOf(moduleOf(join(SRC, 'index.ts')))).toBe(STAGES.length - 1);
  });
});
