// CLI commands on objects (put/get/repair/rewrap), the benchmarks and the demo.
import type { Command } from './cli.js';

export const OBJECT_COMMANDS: Record<string, Command> = {
  demo: {
    summary: 'run the demo on a fresh SoftHSM token and temp shard folders',
    usage: 'demo',
    async run() {
      const { runDemo } = await import('./demo.js');
      await runDemo();
    },
  },
};
