import { Command } from 'commander';
import type { JourneyDefinition } from '../../core/journey/journey-schema.js';
import { renderJourneyMermaid } from '../../core/journey/render-mermaid.js';

/** `strata journey show <tier>`: the tier's journey as a Mermaid flowchart, for docs and reviews. */
export function journeyCommand(loadJourney: (tier: string) => Promise<JourneyDefinition>): Command {
  const journey = new Command('journey').description('inspect the journeys');
  journey
    .command('show')
    .description("print a tier's journey as a Mermaid flowchart")
    .argument('<tier>', 'the tier whose journey to show')
    .action(async (tier: string) => {
      process.stdout.write(renderJourneyMermaid(await loadJourney(tier)));
    });
  return journey;
}
