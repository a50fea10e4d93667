/** vitest setupFiles: after each test file, passed or failed, remove the scratch folders it made. */
import { afterAll } from 'vitest';
import { removeScratchDirs } from './helpers/scratch.js';

afterAll(removeScratchDirs);
