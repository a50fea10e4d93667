import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Engine tests compile ONNX graphs and train small models; cross-checks spawn Python.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Native addons (onnxruntime-node, tfjs-node) are safer in child processes than in worker threads.
    pool: 'forks',
    // Scratch folders in this checkout's .tmp/, removed after each file and run (test/helpers/scratch.ts).
    globalSetup: ['test/global-setup.ts'],
    setupFiles: ['test/setup.ts'],
  },
});
