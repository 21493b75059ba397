/**
 * The `strata` command. Each subcommand lives in commands/; this file only wires them up and makes sure a
 * failure is reported as a message, never a stack trace.
 */
import '../local/polyfills.js';
import '../local/cli-environment.js';
import { Command } from 'commander';
import { validateCommand } from './commands/validate.js';
import { schemasCommand } from './commands/schemas.js';
import { simulateCommand } from './commands/simulate.js';
import { explainCommand, userCommand } from './commands/user.js';
import { devCommand } from './commands/dev.js';
import { dlqCommand } from './commands/dlq.js';
import { journeyCommand } from './commands/journey.js';
import { sendTestCommand } from './commands/send-test.js';
import { loadValidRuleset } from './commands/simulate.js';
import { UsageError } from './output.js';
import { consoleOutput, reportFailure } from './output.js';

const program = new Command('strata')
  .description('Tiered user operations: rules move users between tiers, journeys nurture each tier.')
  .showHelpAfterError()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

program.addCommand(devCommand(consoleOutput));
program.addCommand(validateCommand(consoleOutput));
program.addCommand(schemasCommand(consoleOutput));
program.addCommand(simulateCommand(consoleOutput));
program.addCommand(userCommand(consoleOutput));
program.addCommand(explainCommand(consoleOutput));
program.addCommand(dlqCommand(consoleOutput));
program.addCommand(sendTestCommand(consoleOutput));
program.addCommand(
  journeyCommand(async () => (await loadValidRuleset(process.cwd(), 'the ruleset')).journeys),
);

program.parseAsync(process.argv).catch((error: unknown) => {
  reportFailure(error, consoleOutput);
  process.exitCode = 2;
});
