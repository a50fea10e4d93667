import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { parseEngines } from '../../src/cli/bench.js';
import { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parsePositiveInt } from '../../src/cli/io.js';
import { buildProgram, main } from '../../src/cli/main.js';
import { toolkitVersion } from '../../src/version.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyLinear } from '../helpers/study.js';

const run = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);

describe('twinscope CLI', () => {
  it('prints help and exits 0', async () => {
    const io = capture();
    expect(await run(io, '--help')).toBe(EXIT_OK);
    expect(io.out).toContain('Usage: twinscope');
    expect(io.out).toContain('bench');
  });

  it('prints the package.json version', async () => {
    const io = capture();
    expect(await run(io, '--version')).toBe(EXIT_OK);
    expect(io.out.trim()).toBe(toolkitVersion());
    expect(toolkitVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('documents bench train and its options', async () => {
    const io = capture();
    expect(await run(io, 'bench', 'train', '--help')).toBe(EXIT_OK);
    for (const flag of ['--json', '--threads', '--steps', '--engines']) expect(io.out).toContain(flag);
  });

  it('exits 2 on an unknown option or command', async () => {
    const io = capture();
    expect(await run(io, '--no-such-option')).toBe(EXIT_USAGE);
    expect(io.err).toContain("unknown option '--no-such-option'");
    expect(await run(capture(), 'no-such-command')).toBe(EXIT_USAGE);
    expect(await run(capture(), 'bench', 'train', '--bogus')).toBe(EXIT_USAGE);
  });

  it('exits 2 on bad option values, before any benchmark work', async () => {
    const io = capture();
    expect(await run(io, 'bench', 'train', '--threads', '0')).toBe(EXIT_USAGE);
    expect(io.err).toContain('positive integer');
    expect(await run(capture(), 'bench', 'train', '--steps', 'many')).toBe(EXIT_USAGE);
    expect(await run(capture(), 'bench', 'train', '--engines', 'ort,cuda')).toBe(EXIT_USAGE);
  });

  it('exits 2 when a command group is given no subcommand', async () => {
    const io = capture();
    expect(await run(io, 'bench')).toBe(EXIT_USAGE);
    expect(io.err).toContain('train');
  });

  it('never calls process.exit: every outcome is an exit code returned by main (README table)', async () => {
    // Were process.exit called, the spy would record it and throw instead of ending the test worker.
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`process.exit(${code}) called`);
    });
    const exitCodeBefore = process.exitCode;
    const root = scratchDir('twinscope-cli-main-');
    const spec = join(root, 'lin.json');
    writeFileSync(spec, JSON.stringify(tinyLinear));
    const out = join(root, 'run');
    try {
      const program = buildProgram(capture());
      expect(program.name()).toBe('twinscope');
      expect(program.commands.map((c) => c.name())).toContain('bench');

      // [args, exit code per README: 0 success, 1 the work failed, 2 bad input, what stderr says]
      const cases: [string[], number, RegExp][] = [
        [['--help'], 0, /^$/],
        [['--version'], 0, /^$/],
        [['train', '--help'], 0, /^$/],
        [['bench', 'train', '--help'], 0, /^$/],
        [['train', spec, '--out', out, '--no-progress'], 0, /^$/],
        [['train', spec, '--out', out, '--no-progress'], 0, /already complete/],
        [['verify', out], 0, /^$/],
        [['inspect', out, '--json'], 0, /^$/],
        [['verify', join(root, 'not-a-run')], 2, /error: .*not a directory \(no such folder\)/],
        [['inspect', join(root, 'not-a-run')], 2, /error: .*not a run directory/],
        [['train', spec, '--out', spec], 2, /error: .*lin\.json: exists and is not a folder/],
        [['--no-such-option'], 2, /unknown option '--no-such-option'/],
        [['no-such-command'], 2, /unknown command 'no-such-command'/],
        [['bench'], 2, /train/],
        [['bench', 'train', '--bogus'], 2, /unknown option '--bogus'/],
        [['bench', 'train', '--threads', '0'], 2, /positive integer/],
        [['train', spec], 2, /required option '--out <dir>'/],
        [['train', join(root, 'missing.json'), '--out', join(root, 'x')], 2, /error: .*missing\.json/],
      ];
      for (const [args, code, err] of cases) {
        const io = capture();
        expect(await run(io, ...args), `twinscope ${args.join(' ')}: ${io.err}`).toBe(code);
        expect(io.err, `twinscope ${args.join(' ')}`).toMatch(err);
        // Success prints to stdout; a usage error prints nothing there.
        if (code === EXIT_OK) expect(io.out.length).toBeGreaterThan(0);
        if (code === EXIT_USAGE) expect(io.out).toBe('');
      }
      expect([EXIT_OK, EXIT_FAILURE, EXIT_USAGE]).toEqual([0, 1, 2]);
      expect(exit).not.toHaveBeenCalled();
      // main returns the code; only bin/twinscope.js assigns it to process.exitCode.
      expect(process.exitCode).toBe(exitCodeBefore);
    } finally {
      exit.mockRestore();
    }
  });
});

describe('option parsers', () => {
  it('parses positive integers only', () => {
    expect(parsePositiveInt('4')).toBe(4);
    for (const bad of ['0', '-1', '1.5', 'x', '', '1e3']) expect(() => parsePositiveInt(bad)).toThrow();
  });

  it('parses engine lists, dropping duplicates', () => {
    expect(parseEngines('ort, tfjs,ort')).toEqual(['ort', 'tfjs']);
    expect(() => parseEngines('')).toThrow(/at least one/);
    expect(() => parseEngines('ort,jax')).toThrow(/unknown engine 'jax'/);
  });
});
