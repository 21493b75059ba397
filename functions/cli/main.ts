/**
 * The `strata` command. Each subcommand lives in commands/; this file only wires them up and makes sure a
 * failure is reported as a message, never a stack trace.
 */
import '../local/polyfills.js';
import '../local/quiet-sdk-warnings.js';
import { Command } from 'commander';
import { validateCommand } from './commands/validate.js';
import { schemasCommand } from './commands/schemas.js';
import { simulateCommand } from './commands/simulate.js';
import { consoleOutput, reportFailure } from './output.js';

const program = new Command('strata')
  .description('Tiered user operations: rules move users between tiers, journeys nurture each tier.')
  .showHelpAfterError()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

program.addCommand(validateCommand(consoleOutput));
program.addCommand(schemasCommand(consoleOutput));
program.addCommand(simulateCommand(consoleOutput));

program.parseAsync(process.argv).catch((error: unknown) => {
  reportFailure(error, consoleOutput);
  process.exitCode = 2;
});
