// Reads the env file softhsm/setup.sh writes (lines `export NAME='value'`), for the CLI, demo, tests and benches.
import { readFileSync } from 'node:fs';

export function readEnvFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^export ([A-Z0-9_]+)='([^']*)'$/.exec(line.trim());
    if (match) vars[match[1]!] = match[2]!;
  }
  return vars;
}
