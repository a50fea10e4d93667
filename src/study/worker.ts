/** Entry point of a study worker process: serves study jobs ({@link executeJob}) to the local pool. */
import { serveJobs } from '../exec/worker-loop.js';
import { executeJob } from './jobs.js';

serveJobs(executeJob);
