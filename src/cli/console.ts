// `console`: the operator console (src/console/) on this command's engine, until SIGINT/SIGTERM.
import { CONSOLE_OPTIONS, CONSOLE_SUMMARY, CONSOLE_USAGE, startConsoleFromOptions, untilStopped } from '../console/launch.js';
import type { Command } from './command.js';

export const consoleCommands: Command[] = [
  {
    name: 'console',
    summary: CONSOLE_SUMMARY,
    usage: CONSOLE_USAGE,
    options: CONSOLE_OPTIONS,
    async run({ values }, ctx) {
      const running = await startConsoleFromOptions(values, await ctx.engine(), ctx.out);
      await untilStopped();
      await running.close();
    },
  },
];
