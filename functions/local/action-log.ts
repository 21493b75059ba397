/**
 * `<data>/actions.jsonl`: the JourneyActions the embedded stack delivered, one per line, as a channel would see
 * them. A journey step may publish its action more than once (a Task retried after its send, or run again after a
 * restart that came before its result was recorded), always with the same actionId; like a channel that drops
 * repeated ids, the log keeps the first and reports the repeat, so each action is delivered once. An action is
 * fsync'd before the step goes on to record its result, so no crash loses one the journey counts as sent.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JourneyAction } from '../core/journey/decide-journey-step.js';
import { openDurableFile } from './durable-file.js';

export const ACTIONS_FILE = 'actions.jsonl';

export interface ActionLog {
  /** Appends the action, durably; false (and nothing written) if one with its actionId was delivered already. */
  deliver(action: JourneyAction): Promise<boolean>;
  close(): Promise<void>;
}

export async function openActionLog(dataDir: string): Promise<ActionLog> {
  const path = join(dataDir, ACTIONS_FILE);
  const delivered = new Set<string>();
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  for (const line of text.split('\n')) {
    const actionId = actionIdOf(line);
    if (actionId) delivered.add(actionId);
  }
  // A line cut short by a crash is finished by a newline, so that the next action starts a line of its own.
  let prefix = text.length > 0 && !text.endsWith('\n') ? '\n' : '';
  const file = await openDurableFile(path);
  return {
    async deliver(action) {
      if (delivered.has(action.actionId)) return false;
      delivered.add(action.actionId);
      const line = prefix + JSON.stringify(action) + '\n';
      prefix = '';
      await file.append(line);
      return true;
    },
    close: () => file.close(),
  };
}

/** The actionId of a complete line; undefined for an empty or cut-off one (its action is delivered again). */
function actionIdOf(line: string): string | undefined {
  if (!line.trim()) return undefined;
  try {
    const parsed = JSON.parse(line) as { actionId?: unknown };
    return typeof parsed.actionId === 'string' ? parsed.actionId : undefined;
  } catch {
    return undefined;
  }
}
