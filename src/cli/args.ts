// Command-line parsing (node:util parseArgs): finds the command among the words, accepts the global options
// before or after it, and turns option strings into checked values. Everything wrong here is a UsageError.
import { parseArgs } from 'node:util';
import { UsageError, type Command, type OptionSpec, type ParsedArgs } from './command.js';

export const GLOBAL_OPTIONS = {
  env: { type: 'string' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpec;

/** The longest command name made of the leading words, at most this many. */
const MAX_NAME_WORDS = 3;

export interface Found {
  /** Absent: no command named (help, or a usage error when `unknown` words were given). */
  command?: Command;
  unknown?: string;
  /** argv without the command's words. */
  rest: string[];
}

/**
 * Finds the command: its words are the first positionals (global options may stand before or between them);
 * the longest name that matches wins, so `keys create` beats a future `keys`.
 */
export function findCommand(argv: string[], commands: ReadonlyMap<string, Command>): Found {
  // Only the global options are known here, so anything else reads as a loose flag or a positional.
  const { tokens } = parseArgs({ args: argv, options: GLOBAL_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  const end = tokens.findIndex((t) => t.kind === 'option-terminator');
  const words = (end < 0 ? tokens : tokens.slice(0, end)).filter((t) => t.kind === 'positional').slice(0, MAX_NAME_WORDS);
  for (let n = words.length; n > 0; n--) {
    const command = commands.get(words.slice(0, n).map((w) => w.value).join(' '));
    if (!command) continue;
    const drop = new Set(words.slice(0, n).map((w) => w.index));
    return { command, rest: argv.filter((_, i) => !drop.has(i)) };
  }
  return words.length ? { unknown: words.map((w) => w.value).join(' '), rest: argv } : { rest: argv };
}

/** Parses the arguments left after the command's words against the global and the command's own options. */
export function parseOptions(args: string[], options: OptionSpec = {}): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values, positionals };
  } catch (err) {
    // parseArgs throws TypeErrors coded ERR_PARSE_ARGS_* (unknown option, missing value): usage errors.
    throw new UsageError((err as Error).message);
  }
}

/** An optional whole-number option (≥ min): absent → undefined; anything else but digits → UsageError. */
export function integerOption(values: ParsedArgs['values'], name: string, min = 0): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} takes a whole number ≥ ${min}, got "${text}"`);
  return n;
}

/** An optional positive decimal option, e.g. a size in MiB. */
export function numberOption(values: ParsedArgs['values'], name: string): number | undefined {
  const text = values[name];
  if (text === undefined) return undefined;
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(n > 0)) throw new UsageError(`--${name} takes a positive number, got "${text}"`);
  return n;
}

/** Exactly one positional argument, described as `what` in the error. */
export function onePositional(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`give exactly one ${what}`);
  return positionals[0]!;
}
