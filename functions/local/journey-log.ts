/**
 * The embedded stack's journal of journey steps (`<data>/journeys.jsonl`): one line per step outcome, so that
 * `strata user` can show a journey's last send. The executions' status is the runner's own record
 * (journey-execution-log.ts).
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const JOURNEY_LOG_FILE = 'journeys.jsonl';

export interface JourneyLogLine {
  at: string;
  executionName: string;
  tier: string;
  stepId: string;
  outcome: string;
}

export async function appendJourneyLog(dataDir: string, lines: JourneyLogLine[]): Promise<void> {
  if (lines.length === 0) return;
  await appendFile(join(dataDir, JOURNEY_LOG_FILE), lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
}

/** The last step of the execution that sent something, if any. */
export async function readLastSentStep(dataDir: string, executionName: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(join(dataDir, JOURNEY_LOG_FILE), 'utf8');
  } catch {
    return null;
  }
  let lastStep: string | null = null;
  for (const raw of text.split('\n')) {
    if (!raw.includes(executionName)) continue;
    let line: JourneyLogLine;
    try {
      line = JSON.parse(raw) as JourneyLogLine;
    } catch {
      continue; // the last line, cut short by a crash
    }
    if (line.executionName === executionName && line.outcome === 'sent') lastStep = line.stepId;
  }
  return lastStep;
}
