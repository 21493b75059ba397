// The `strata` command as compiled JavaScript: functions/cli/main.ts bundled by esbuild into dist/cli/, one chunk
// per command, so a command loads only its own code. `npm install` builds it (the `prepare` script runs this file);
// bin/strata.js rebuilds it when a source file is newer, so an edited checkout never runs stale code.
// Plain JavaScript, because it runs before anything is compiled.
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { statSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(ROOT, 'dist', 'cli');
export const ENTRY = join(OUT_DIR, 'main.js');
export const ENTRY_URL = pathToFileURL(ENTRY).href;
const MANIFEST = join(OUT_DIR, 'inputs.json');

/** True when the bundle exists and no file it was built from (or package.json) changed since. Costs a few ms. */
export function bundleIsFresh() {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, 'utf8'));
  } catch {
    return false;
  }
  for (const input of manifest.inputs) {
    try {
      if (statSync(join(ROOT, input)).mtimeMs > manifest.builtAtMs) return false;
    } catch {
      return false; // an input was deleted or renamed
    }
  }
  return true;
}

/**
 * Builds into a private folder and renames it into place, so two processes that rebuild at once never load a
 * half-written bundle.
 */
export async function buildCli() {
  const { build } = await import('esbuild');
  const builtAtMs = Date.now();
  const staging = `${OUT_DIR}.${process.pid}.${builtAtMs}`;
  const result = await build({
    absWorkingDir: ROOT,
    // dynalite's worker thread (functions/local/dynalite-server.ts) and the replay's (functions/replay/parallel-replay.ts)
    // start bundles of their own.
    entryPoints: {
      main: join(ROOT, 'functions', 'cli', 'main.ts'),
      'dynalite-worker': join(ROOT, 'functions', 'local', 'dynalite-worker.ts'),
      'replay-worker': join(ROOT, 'functions', 'replay', 'replay-worker.ts'),
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir: staging,
    // Packages are bundled too: one parsed file per command loads much faster than hundreds of CommonJS modules
    // resolved and lexed one by one. dynalite is required at run time (functions/local/dynalite.ts) and the
    // Step Functions interpreter is only for dev and simulate, so both load from node_modules as they are; so does
    // koffi, whose native binary comes from a platform package (functions/local/release-memory.ts).
    external: ['dynalite', 'aws-local-stepfunctions', 'koffi'],
    mainFields: ['module', 'main'],
    // Bundled CommonJS code calls require() for Node's built-ins; an ES module has none of its own.
    banner: { js: "import { createRequire as __strataCreateRequire } from 'node:module'; const require = __strataCreateRequire(import.meta.url);" },
    // For STRATA_DEBUG=1 stack traces; a user otherwise sees messages only.
    sourcemap: 'linked',
    sourcesContent: false,
    metafile: true,
    logLevel: 'warning',
  });
  // Bundled packages count as inputs through the lockfile: a changed dependency rebuilds the bundle.
  const inputs = [
    ...Object.keys(result.metafile.inputs).filter((input) => !input.startsWith('node_modules/')),
    'package.json',
    'package-lock.json',
    relative(ROOT, fileURLToPath(import.meta.url)),
  ];
  await writeFile(join(staging, 'inputs.json'), JSON.stringify({ builtAtMs, inputs }) + '\n');
  await mkdir(dirname(OUT_DIR), { recursive: true });
  await rm(`${OUT_DIR}.old.${process.pid}`, { recursive: true, force: true });
  await rename(OUT_DIR, `${OUT_DIR}.old.${process.pid}`).catch(() => undefined);
  await rename(staging, OUT_DIR).catch(async (error) => {
    // Another process put its build in place between the two renames: keep that one.
    await rm(staging, { recursive: true, force: true });
    if (!(await stat(ENTRY).catch(() => undefined))) throw error;
  });
  await rm(`${OUT_DIR}.old.${process.pid}`, { recursive: true, force: true });
}

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  await buildCli();
}
