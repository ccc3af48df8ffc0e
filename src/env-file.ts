// Reads the env file softhsm/setup.sh writes (lines `export NAME='value'`), for the CLI, demo, tests and benches.
// node:util parseEnv (Node ≥ 20.12) does the parsing: the dotenv syntax, `export ` prefixes and quotes included.
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

export function readEnvFile(path: string): Record<string, string> {
  return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
}
