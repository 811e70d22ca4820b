/** dist/agent.js: the agent run on GPU hosts (plain node >= 18, no node_modules). See agent/entry.ts. */
import * as path from 'node:path';
import { runAgentCommandLine } from './agent/entry';

runAgentCommandLine(process.argv.slice(2), [process.execPath, path.resolve(process.argv[1])]);
