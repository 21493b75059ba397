#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx strata` works without a build step. tsx is registered in this
// process rather than run as a child: a supervisor (or a test) that sends SIGINT/SIGTERM to the `strata` pid then
// reaches the command itself, so `strata dev` shuts down cleanly and its exit code is the command's own.
import { register } from 'tsx/esm/api';

register();
await import('../functions/cli/main.ts');
