#!/usr/bin/env node
// The `strata` command: runs the compiled bundle in dist/cli/ (built by `npm install`, see cli-bundle.js), and
// rebuilds it first when a source file changed since, so `npx strata` always runs the code in the checkout.
// The command runs in this process, not a child: a supervisor (or a test) that sends SIGINT/SIGTERM to the
// `strata` pid reaches the command itself, so `strata dev` shuts down cleanly and its exit code is its own.

// Checked before anything else loads, so an old Node gets this message rather than a syntax error.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(
    `strata: needs Node 20.19 or later, and this is Node ${process.versions.node} (install a current Node LTS from nodejs.org or your package manager)\n`,
  );
  process.exit(2);
}

// Source maps turn a STRATA_DEBUG=1 stack trace into TypeScript lines; users otherwise see messages only.
if (process.env.STRATA_DEBUG) process.setSourceMapsEnabled(true);

const { ENTRY_URL, buildCli, bundleIsFresh } = await import('./cli-bundle.js');
if (!bundleIsFresh()) {
  try {
    await buildCli();
  } catch (error) {
    // esbuild has already printed where a source file is wrong.
    process.stderr.write(
      `strata: could not compile the command from functions/ (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); fix the error above, or run \`npm install\` if esbuild is missing\n`,
    );
    process.exit(2);
  }
}
await import(ENTRY_URL);
