// The engine's worker entry: registers every area's task handlers by kind. Each worker thread loads this file;
// the pool is handed its URL (WORKER_ENTRY) from above, so the pool itself imports no feature.
import { createDispatcher } from './pool/worker.js';
import { aeadTasks } from './aead/tasks.js';
import { erasureTasks } from './erasure/tasks.js';
import { objectTasks } from './object/tasks.js';

/** The URL to give `new WorkerPool(threads, { entry: WORKER_ENTRY })`. */
export const WORKER_ENTRY = import.meta.url;

export default createDispatcher(aeadTasks, erasureTasks, objectTasks);
