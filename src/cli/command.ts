// What a CLI command is: a name, its help, its own options and a run function. Each command module exports a list
// of these; commands.ts puts them together. Commands throw UsageError for bad arguments and let engine errors through.
import type { ParseArgsConfig } from 'node:util';
import type { CryptoEngine } from '../engine.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, any>;
  positionals: string[];
}

export interface Command {
  /** One or more words: `keys create`, `put`, later `bucket create`. */
  name: string;
  summary: string;
  /** Arguments after the name, for the usage line, e.g. `--alias ALIAS`. */
  usage: string;
  options?: OptionSpec;
  run(args: ParsedArgs, ctx: CliContext): Promise<void>;
}

export interface CliContext {
  /** The engine, opened on first use (from the global --env / --threads); closed when the command ends. */
  engine(): Promise<CryptoEngine>;
  out(line: string): void;
  err(line: string): void;
  progress(label: string): (done: number, total: number) => void;
}

/** A mistake in how the command was called; exits with EXIT.usage and the command's usage line. */
export class UsageError extends Error {
  override name = 'UsageError';
}
