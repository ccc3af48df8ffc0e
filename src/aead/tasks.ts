// AEAD worker task handlers (filled in by the segmented-AEAD work).
export const aeadTasks: Record<string, (task: any) => unknown> = {};
