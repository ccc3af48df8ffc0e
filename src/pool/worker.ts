// Worker entry: dispatches a task to the handler its area registered. No state beyond what handlers keep.
import type { PoolTask } from './pool.js';
import { aeadTasks } from '../aead/tasks.js';
import { erasureTasks } from '../erasure/tasks.js';
import { objectTasks } from '../object/tasks.js';

type Handler = (task: any) => unknown;
const HANDLERS: Record<string, Handler> = { ...aeadTasks, ...erasureTasks, ...objectTasks };

export default function runTask(task: PoolTask): unknown {
  const handler = HANDLERS[task.kind];
  if (!handler) throw new TypeError(`unknown pool task kind: ${task.kind}`);
  return handler(task);
}
