#!/usr/bin/env node
// The command-line front end (the package's bin): parses the command line, runs one command, exits with a typed code.
// The HSM comes from HSM_PKCS11_LIBRARY / HSM_TOKEN_LABEL (or HSM_SLOT) / HSM_PIN, else from --env FILE, else from
// the project-local token's env file (softhsm/local/env, made by `bash softhsm/setup.sh`).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findCommand, parseOptions } from './args.js';
import type { Command, ParsedArgs } from './command.js';
import { COMMANDS } from './commands.js';
import { createContext } from './context.js';
import { EXIT, report } from './exit.js';

export { EXIT } from './exit.js';

const err = (line: string) => process.stderr.write(line + '\n');
const usageOf = (command: Command) => `${command.name}${command.usage ? ` ${command.usage}` : ''}`;

function helpText(): string {
  const lines = ['usage: hsm-crypto-engine <command> [options]   (--help after a command for its options)', '', 'commands:'];
  for (const command of COMMANDS.values()) lines.push(`  ${command.name.padEnd(18)} ${command.summary}`);
  lines.push('', 'global options (before or after the command):');
  lines.push('  --env FILE     env file with HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL, HSM_PIN (default: the environment, else softhsm/local/env)');
  lines.push('  --threads N    worker threads (default: all cores)');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { command, unknown, rest } = findCommand(argv, COMMANDS);
  let parsed: ParsedArgs;
  try {
    parsed = parseOptions(rest, command?.options);
  } catch (error) {
    return report(error, command ? usageOf(command) : '<command> [options]   (--help for the list)', err);
  }
  if (!command) {
    if (unknown) err(`error: unknown command "${unknown}"`);
    process.stdout.write(helpText() + '\n');
    return unknown || (argv.length > 0 && !parsed.values.help) ? EXIT.usage : EXIT.ok;
  }
  if (parsed.values.help) {
    process.stdout.write(`usage: hsm-crypto-engine ${usageOf(command)}\n${command.summary}\n`);
    return EXIT.ok;
  }
  const ctx = createContext(parsed.values);
  try {
    await command.run(parsed, ctx);
    return EXIT.ok;
  } catch (error) {
    return report(error, usageOf(command), err);
  } finally {
    await ctx.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
