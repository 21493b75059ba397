/**
 * Starts a worker thread on one of the command's own modules (dynalite's, the replay's).
 *
 * In the compiled command (bin/cli-bundle.js) the worker is its own bundle, `<name>.js`, beside the code that starts
 * it. Run from source (tsx, the tests), the worker loads the TypeScript `<name>.ts` beside the caller through tsx;
 * Node 20 resolves a worker's entry before any --import hook runs, so a small script registers tsx first.
 */
import { type ResourceLimits, Worker } from 'node:worker_threads';

export function startBundledWorker(name: string, callerUrl: string, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  const options = { workerData, ...(resourceLimits ? { resourceLimits } : {}) };
  if (callerUrl.endsWith('.js')) return new Worker(new URL(`./${name}.js`, callerUrl), options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(bootstrap, { eval: true, ...options });
}
