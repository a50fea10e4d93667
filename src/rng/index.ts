/** Counter-based random numbers: Philox4x32-10 and the splittable {@link Rng}. */
export { deriveKey, type PhiloxKey, streamMessage } from './derive.js';
export { mulhi32, philox4x32 } from './philox.js';
export { Rng } from './rng.js';
