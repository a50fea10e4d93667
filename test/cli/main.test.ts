import { describe, expect, it } from 'vitest';
import { parseEngines, parsePositiveInt } from '../../src/cli/bench.js';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { buildProgram, main } from '../../src/cli/main.js';
import { toolkitVersion } from '../../src/version.js';
import { capture } from '../helpers/cli-io.js';

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

  it('builds a program that never calls process.exit', () => {
    const program = buildProgram(capture());
    expect(program.name()).toBe('twinscope');
    expect(program.commands.map((c) => c.name())).toContain('bench');
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
