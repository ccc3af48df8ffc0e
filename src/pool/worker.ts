// Worker-side dispatch for the pool: turns handler tables (kind → function) into the one function a worker entry
// exports. The pool knows no feature: the entry file above it (src/worker-entry.ts) names the areas' tables.

/** A task handler; it runs on a worker thread with the task message as sent by `WorkerPool.run`. */
export type TaskHandler = (task: any) => unknown;
export type TaskTable = Record<string, TaskHandler>;

/** Merges the tables into one dispatcher; a kind registered twice is a programming error, caught at load. */
export function createDispatcher(...tables: TaskTable[]): (task: { kind: string }) => unknown {
  const handlers = new Map<string, TaskHandler>();
  for (const table of tables) {
    for (const [kind, handler] of Object.entries(table)) {
      if (handlers.has(kind)) throw new TypeError(`pool task kind registered twice: ${kind}`);
      handlers.set(kind, handler);
    }
  }
  return (task) => {
    const handler = handlers.get(task.kind);
    if (!handler) throw new TypeError(`unknown pool task kind: ${task.kind}`);
    return handler(task);
  };
}
