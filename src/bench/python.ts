/**
 * Find a Python interpreter that can import given modules (torch, scipy, …) for the benchmarks and
 * cross-checks that compare against Python reference code.
 *
 * Debian's python3-torch and python3-scipy install into /usr/lib/python3/dist-packages, which only
 * /usr/bin/python3 sees: a `python3` earlier on PATH (pyenv, conda, a venv) usually cannot import
 * them. So the candidates are `python3` on PATH, then /usr/bin/python3; setting $TWINSCOPE_PYTHON
 * replaces both with that one interpreter.
 */
import { execFile } from 'node:child_process';

export interface PythonProbe {
  /** The interpreter that imports every requested module, or null when none does. */
  readonly python: string | null;
  /** Why each candidate was rejected (empty when the first one worked). */
  readonly tried: readonly string[];
}

/** Candidate interpreters in the order they are tried. */
export function pythonCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const explicit = env.TWINSCOPE_PYTHON;
  if (explicit !== undefined && explicit.length > 0) return [explicit];
  return ['python3', '/usr/bin/python3'];
}

/** The first candidate interpreter that can `import` every module in `modules`. */
export async function findPython(
  modules: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 60_000,
): Promise<PythonProbe> {
  const tried: string[] = [];
  const code = modules.map((m) => `import ${m}`).join('; ') || 'pass';
  for (const python of pythonCandidates(env)) {
    try {
      await execFileText(python, ['-c', code], timeoutMs);
      return { python, tried };
    } catch (err) {
      tried.push(`${python}: ${firstLine(err)}`);
    }
  }
  return { python: null, tried };
}

/** Run a program and resolve with its stdout; reject with its stderr's last line on failure. */
export function execFileText(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      [...args],
      { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.trim().split('\n').pop();
          reject(new Error(detail ? `${err.message.split('\n')[0]}: ${detail}` : err.message));
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}
