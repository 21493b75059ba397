/**
 * `strata dlq`: the events the embedded stack could never apply, each with its reason, and `strata dlq redrive`
 * to send them again (after the producer or the rules are fixed) through the same durable PutEvents path.
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { Command } from 'commander';
import { resolve } from 'node:path';
import { DLQ_FILE, type DeadLetterLine, envelopeOf, markRedriven, readDeadLetters } from '../../local/dead-letter-file.js';
import { runningStack } from '../../local/local-data.js';
import { DEFAULT_BUS_NAME, MAX_ENTRIES_PER_CALL } from '../../local/put-events-endpoint.js';
import { type CliOutput, UsageError } from '../output.js';

interface DlqOptions {
  data: string;
  json?: boolean;
}

/** One line per letter: where it is in the file, the event, why. */
function describeLetter(letter: DeadLetterLine & { line: number }): string {
  return `${String(letter.line).padStart(4)}  ${letter.at.slice(0, 19).replace('T', ' ')}  ${letter.eventRef}  ${letter.reason}`;
}

async function listDeadLetters(options: DlqOptions, out: CliOutput): Promise<void> {
  const dataDir = resolve(options.data);
  const { letters, unreadable } = await readDeadLetters(dataDir);
  if (options.json) {
    out.info(JSON.stringify(letters, null, 2));
    return;
  }
  if (letters.length === 0) out.info(`No dead letters in ${options.data}.`);
  else {
    out.info(`${letters.length} dead letter(s) in ${options.data}/${DLQ_FILE} (line, time, event, reason):`);
    for (const letter of letters) out.info(describeLetter(letter));
    out.info('Fix the producer or the rules, then `strata dlq redrive` sends them again.');
  }
  if (unreadable.length > 0) out.error(`dlq: line(s) ${unreadable.join(', ')} of ${DLQ_FILE} are not dead letters and were skipped`);
}

async function redriveDeadLetters(options: DlqOptions & { line?: string[] }, out: CliOutput): Promise<void> {
  const dataDir = resolve(options.data);
  const stack = await runningStack(dataDir);
  if (!stack)
    throw new UsageError(
      `dlq redrive: no running stack uses ${options.data}`,
      `start \`strata dev --data ${options.data}\` first; redriven events go through its PutEvents endpoint`,
    );
  const file = await readDeadLetters(dataDir);
  const wanted = options.line?.map(Number);
  if (wanted?.some((line) => !Number.isInteger(line) || line < 1))
    throw new UsageError(`dlq redrive: --line takes line numbers as \`strata dlq\` lists them, not "${options.line!.join(' ')}"`);
  const chosen = wanted ? file.letters.filter((letter) => wanted.includes(letter.line)) : file.letters;
  if (chosen.length === 0) {
    out.info('dlq redrive: nothing to redrive.');
    return;
  }

  const redrivable: Array<{ id: string; line: number; entry: PutEventsRequestEntry }> = [];
  for (const letter of chosen) {
    const envelope = envelopeOf(letter.body);
    if (!envelope) {
      out.error(`dlq redrive: line ${letter.line} (${letter.eventRef}) is not an EventBridge event, so it cannot be sent again; it stays`);
      continue;
    }
    const time = new Date(envelope.time);
    redrivable.push({
      id: letter.id,
      line: letter.line,
      entry: {
        EventBusName: DEFAULT_BUS_NAME,
        Source: envelope.source,
        DetailType: envelope['detail-type'],
        Detail: JSON.stringify(envelope.detail),
        ...(Number.isNaN(time.getTime()) ? {} : { Time: time }),
        ...(Array.isArray(envelope.resources) && envelope.resources.length > 0 ? { Resources: envelope.resources } : {}),
      },
    });
  }

  const client = new EventBridgeClient({
    endpoint: stack.eventsEndpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const accepted = new Set<string>();
  try {
    for (let start = 0; start < redrivable.length; start += MAX_ENTRIES_PER_CALL) {
      const chunk = redrivable.slice(start, start + MAX_ENTRIES_PER_CALL);
      const response = await client.send(new PutEventsCommand({ Entries: chunk.map((item) => item.entry) }));
      (response.Entries ?? []).forEach((result, index) => {
        const item = chunk[index]!;
        if (result.EventId) accepted.add(item.id);
        else out.error(`dlq redrive: line ${item.line} was not accepted (${result.ErrorCode}: ${result.ErrorMessage}); it stays`);
      });
    }
  } finally {
    client.destroy();
    // Only what the stack accepted (durably) leaves the file, even if a later call failed.
    await markRedriven(dataDir, accepted, new Date());
  }
  out.info(
    `dlq redrive: ${accepted.size} of ${chosen.length} sent again and removed from ${DLQ_FILE}; any that still fail come back with their reason.`,
  );
}

export function dlqCommand(out: CliOutput): Command {
  const dlq = new Command('dlq')
    .description('list the events the local stack could not apply, with their reasons')
    .option('--data <dir>', 'where the local data lives', '.strata')
    .option('--json', 'print the dead letters as JSON')
    .action((options: DlqOptions) => listDeadLetters(options, out));
  dlq
    .command('redrive')
    .description('send dead letters again through the running stack (strata dev), removing each once accepted')
    .option('--line <n...>', 'only these lines, as `strata dlq` numbers them')
    // --data belongs to `dlq` and may come before or after `redrive`.
    .action((_options: unknown, command: Command) => redriveDeadLetters(command.optsWithGlobals<DlqOptions & { line?: string[] }>(), out));
  return dlq;
}
