/**
 * How long the `strata` command takes, as a user waits for it: a fresh `node bin/strata.js …` process from spawn
 * to exit, median of several runs after one warm-up run (which also rebuilds a stale bundle). `user` reads from a
 * running `strata dev` stack (started here with no demo, one user posted through the real EventBridge client).
 */
import '../functions/local/cli-environment.js';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_MAX_BACKLOG, startDev } from '../functions/cli/commands/dev.js';
import { median } from './stats.js';

export interface CliFigures {
  helpMs: number;
  validateMs: number;
  userMs: number;
  samples: { help: number[]; validate: number[]; user: number[] };
}

const run = promisify(execFile);
const BENCH_USER = 'bench-cli-user';

async function timeCommand(projectRoot: string, args: string[], runs: number): Promise<number[]> {
  const bin = join(projectRoot, 'bin', 'strata.js');
  const once = async (): Promise<number> => {
    const started = performance.now();
    await run(process.execPath, [bin, ...args], { cwd: projectRoot, env: { ...process.env, STRATA_DEBUG: '' } });
    return Math.round((performance.now() - started) * 10) / 10;
  };
  await once();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await once());
  return samples;
}

/** A stack with one user who has a profile, metrics and a history entry, as `strata user` expects. */
async function seededStack(projectRoot: string, dataDir: string): Promise<{ stop(): Promise<unknown> }> {
  const quiet = { info: () => undefined, error: () => undefined };
  const running = await startDev(
    {
      port: '0',
      daySeconds: '86400',
      data: dataDir,
      rules: projectRoot,
      demo: false,
      maxBacklog: String(DEFAULT_MAX_BACKLOG),
      maxFutureHours: '24',
      progressSeconds: '0',
    },
    quiet,
  );
  const client = new EventBridgeClient({
    endpoint: running.eventsUrl,
    region: 'local',
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
  });
  try {
    const now = running.clock.now().getTime();
    const entries = ['app.opened', 'content.viewed', 'content.completed'].map((type, i) => ({
      EventBusName: 'strata',
      Source: 'bench.app',
      DetailType: type,
      Detail: JSON.stringify({
        eventId: `${BENCH_USER}-${i}`,
        userId: BENCH_USER,
        type,
        occurredAt: new Date(now - (3 - i) * 86_400_000).toISOString(),
        properties: {},
      }),
    }));
    const response = await client.send(new PutEventsCommand({ Entries: entries }));
    if (response.FailedEntryCount) throw new Error(`bench cli: the stack rejected ${response.FailedEntryCount} of the seed events`);
    await running.stack.settle();
  } finally {
    client.destroy();
  }
  return running;
}

export async function measureCli(projectRoot: string, runs = 10): Promise<CliFigures> {
  const root = resolve(projectRoot);
  const help = await timeCommand(root, ['--help'], runs);
  const validate = await timeCommand(root, ['validate'], runs);
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-cli-'));
  try {
    const stack = await seededStack(root, dataDir);
    try {
      const user = await timeCommand(root, ['user', BENCH_USER, '--data', dataDir], runs);
      return { helpMs: median(help), validateMs: median(validate), userMs: median(user), samples: { help, validate, user } };
    } finally {
      await stack.stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

// `tsx bench/cli.ts [projectRoot]` measures only the command line, for example against another checkout.
if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const figures = await measureCli(process.argv[2] ?? '.');
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
