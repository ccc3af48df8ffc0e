// Every CLI command, by name. To add commands: write a module exporting a Command[] and add it to the list here.
import { bucketCommands, bucketShortCommands } from './buckets.js';
import type { Command } from './command.js';
import { consoleCommands } from './console.js';
import { keyCommands } from './keys.js';
import { objectCommands } from './objects.js';
import { toolCommands } from './tools.js';

const ALL: Command[] = [...keyCommands, ...objectCommands, ...bucketCommands, ...bucketShortCommands, ...toolCommands, ...consoleCommands];

export const COMMANDS: ReadonlyMap<string, Command> = new Map(ALL.map((command) => [command.name, command]));
if (COMMANDS.size !== ALL.length) throw new Error('two CLI commands share a name');
