/**
 * The embedded stack's journal of journey progress (`<data>/journeys.jsonl`): one line per execution started,
 * stopped or finished, and per step outcome. It lets `strata user` show a journey's status while Step Functions'
 * own history is not there to ask.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const JOURNEY_LOG_FILE = 'journeys.jsonl';

export interface JourneyLogLine {
  at: string;
  executionName: string;
  tier: string;
  /** RUNNING on start; SUCCEEDED, FAILED or ABORTED at the end; a step outcome in between. */
  status?: string;
  stepId?: string;
  outcome?: string;
}

export async function appendJourneyLog(dataDir: string, lines: JourneyLogLine[]): Promise<void> {
  if (lines.length === 0) return;
  await appendFile(join(dataDir, JOURNEY_LOG_FILE), lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
}

export async function readJourneyProgress(dataDir: string, executionName: string): Promise<{ status: string; lastStep: string | null } | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, JOURNEY_LOG_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let status: string | undefined;
  let lastStep: string | null = null;
  for (const raw of text.split('\n')) {
    if (!raw.includes(executionName)) continue;
    const line = JSON.parse(raw) as JourneyLogLine;
    if (line.executionName !== executionName) continue;
    if (line.status) status = line.status;
    if (line.stepId && line.outcome === 'sent') lastStep = line.stepId;
  }
  return status === undefined ? undefined : { status, lastStep };
}
