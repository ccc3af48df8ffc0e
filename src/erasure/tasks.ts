// Erasure worker task handlers (filled in by the erasure-coding work).
export const erasureTasks: Record<string, (task: any) => unknown> = {};
