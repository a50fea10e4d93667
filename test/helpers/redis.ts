/**
 * A throwaway Redis server for the queue tests: Debian's `redis-server` (installed by .ci/run; the
 * tests skip without it, or set REDIS_SERVER to another binary) on a free loopback port, with no
 * persistence, stopped by {@link RedisServer.stop}.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer, Socket } from 'node:net';

/** The redis-server binary, or undefined when there is none. */
export function redisServerBinary(): string | undefined {
  const bin = process.env.REDIS_SERVER ?? 'redis-server';
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? bin : undefined;
}

/** A free TCP port on 127.0.0.1 (the OS picks it; redis-server has no `--port 0`). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something answers PING on `port`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

/** A running redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Start redis-server on a free loopback port (no snapshots, no append-only file) and wait until it answers. */
export async function startRedis(bin: string): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      bin,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'yes',
      ],
      { stdio: 'ignore' },
    );
    let exited = false;
    child.once('exit', () => {
      exited = true;
    });
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await ping(port)))
      await new Promise((r) => setTimeout(r, 50));
    if (!exited && (await ping(port))) {
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        stop: () =>
          new Promise<void>((resolve) => {
            if (exited) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      };
    }
    child.kill('SIGKILL');
    // The port was taken between the probe and the start: try another.
    if (attempt >= 2) throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
  }
}
