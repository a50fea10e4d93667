#!/usr/bin/env node
// Entry point of the `twinscope` command: runs the compiled CLI in dist/ (built by `npm run build`,
// which the `prepare` script runs on `npm ci` / `npm install`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);

if (!existsSync(entry)) {
  process.stderr.write(
    'twinscope: the compiled CLI (dist/cli/main.js) is missing.\n' +
      'Run `npm run build` in the twinscope checkout (npm ci / npm install run it too), then try again.\n',
  );
  process.exit(1);
}

// onnxruntime-node 1.30 writes telemetry logs (mat-debug-<pid>.log, .ses) into the temp folder from
// every process that opens a session; twinscope sends no telemetry. Worker processes inherit this.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
