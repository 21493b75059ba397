/**
 * The `strata` command. Each subcommand lives in commands/; this file only wires them up and makes sure a
 * failure is reported as a message, never a stack trace.
 *
 * A command's module (and the AWS SDK, dynalite or the simulator behind it) is imported only when that command
 * runs, so `strata --help` and `strata validate` start in a fraction of a second. To add a command, add an entry
 * to `commands`: its summary is what the top-level help lists without loading the module.
 */
import '../local/cli-environment.js';
import { Command } from 'commander';
import { consoleOutput, reportFailure, stopQuietlyOnClosedPipe } from './output.js';

interface CommandEntry {
  summary: string;
  load(): Promise<Command>;
}

const commands: Record<string, CommandEntry> = {
  dev: {
    summary: 'run the whole system locally: PutEvents endpoint, ingest, journeys and the nightly review',
    load: async () => (await import('./commands/dev.js')).devCommand(consoleOutput),
  },
  validate: {
    summary: 'check every rule and journey file and how they fit together',
    load: async () => (await import('./commands/validate.js')).validateCommand(consoleOutput),
  },
  schemas: {
    summary: 'write the JSON Schemas of the rule, journey and event formats',
    load: async () => (await import('./commands/schemas.js')).schemasCommand(consoleOutput),
  },
  simulate: {
    summary: 'replay an event history on a virtual clock and report what the rules and journeys do',
    load: async () => (await import('./commands/simulate.js')).simulateCommand(consoleOutput),
  },
  import: {
    summary: 'bring in an event history: each user judged as of now, written in batches, quietly',
    load: async () => (await import('./commands/import.js')).importCommand(consoleOutput),
  },
  report: {
    summary: 'report production counters: users per tier, flows, journey funnels, treated vs held-out conversion',
    load: async () => (await import('./commands/report.js')).reportCommand(consoleOutput),
  },
  user: {
    summary: "print a user's tier, grace, review date, metrics, journey and history",
    load: async () => (await import('./commands/user.js')).userCommand(consoleOutput),
  },
  explain: {
    summary: "print why a user is in their tier: the last decision's rules, conditions and values",
    load: async () => (await import('./commands/user.js')).explainCommand(consoleOutput),
  },
  dlq: {
    summary: 'list the events the local stack could not apply, with their reasons; send them again',
    load: async () => (await import('./commands/dlq.js')).dlqCommand(consoleOutput),
  },
  'send-test': {
    summary: "send one journey step's action to a test user through its channel",
    load: async () => (await import('./commands/send-test.js')).sendTestCommand(consoleOutput),
  },
  lock: {
    summary: "pin a user's tier until a date or until unlocked, with a reason kept in the history",
    load: async () => (await import('./commands/operate.js')).lockCommand(consoleOutput),
  },
  unlock: {
    summary: 'hand a locked user back to the rules',
    load: async () => (await import('./commands/operate.js')).unlockCommand(consoleOutput),
  },
  forget: {
    summary: "erase a user's stored data, stop their journeys and publish UserForgotten",
    load: async () => (await import('./commands/operate.js')).forgetCommand(consoleOutput),
  },
  journey: {
    summary: 'inspect the journeys',
    load: async () => {
      const [{ journeyCommand }, { loadValidRuleset }] = await Promise.all([import('./commands/journey.js'), import('./load-ruleset.js')]);
      return journeyCommand(async () => (await loadValidRuleset(process.cwd(), 'the ruleset')).journeys);
    },
  },
};

/** The command named on the command line (`strata <name> …` or `strata help <name>`), if it is one of ours. */
function requestedCommand(args: string[]): string | undefined {
  const words = args.filter((arg) => !arg.startsWith('-'));
  const name = words[0] === 'help' ? words[1] : words[0];
  return name !== undefined && Object.hasOwn(commands, name) ? name : undefined;
}

async function main(): Promise<void> {
  const program = new Command('strata')
    .description('Tiered user operations: rules move users between tiers, journeys nurture each tier.')
    .showHelpAfterError()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

  const requested = requestedCommand(process.argv.slice(2));
  for (const [name, entry] of Object.entries(commands)) {
    // Only the command that runs is loaded; the others are listed by name and summary for help and "did you mean".
    program.addCommand(name === requested ? await entry.load() : new Command(name).summary(entry.summary));
  }
  await program.parseAsync(process.argv);
}

stopQuietlyOnClosedPipe();
main().catch((error: unknown) => {
  reportFailure(error, consoleOutput);
  process.exitCode = 2;
});
