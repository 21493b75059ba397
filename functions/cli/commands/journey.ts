import { Command } from 'commander';
import type { JourneyDefinition } from '../../core/journey/journey-schema.js';
import { renderJourneyMermaid } from '../../core/journey/render-mermaid.js';
import { didYouMean } from '../../core/suggest.js';
import { UsageError } from '../output.js';

/** The journey of `tier`, forgiving case (people type "Member" for "member"), with "did you mean" otherwise. */
export function findJourney(journeys: Record<string, JourneyDefinition>, tier: string): JourneyDefinition {
  const exact = journeys[tier] ?? Object.entries(journeys).find(([id]) => id.toLowerCase() === tier.toLowerCase())?.[1];
  if (exact) return exact;
  const tiers = Object.keys(journeys);
  throw new UsageError(`journey show: no journey for tier "${tier}"`, didYouMean(tier, tiers, `tiers with journeys: ${tiers.join(', ')}`));
}

/** `strata journey show <tier>`: the tier's journey as a Mermaid flowchart, for docs and reviews. */
export function journeyCommand(loadJourneys: () => Promise<Record<string, JourneyDefinition>>): Command {
  const journey = new Command('journey').description('inspect the journeys');
  journey
    .command('show')
    .description("print a tier's journey as a Mermaid flowchart")
    .argument('<tier>', 'the tier whose journey to show')
    .action(async (tier: string) => {
      process.stdout.write(renderJourneyMermaid(findJourney(await loadJourneys(), tier)));
    });
  return journey;
}
