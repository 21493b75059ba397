import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { journeyCommand } from '../../functions/cli/commands/journey.js';
import { renderJourneyMermaid } from '../../functions/core/journey/render-mermaid.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, loadShippedJourney } from '../helpers/journey-fixtures.js';

describe('renderJourneyMermaid', () => {
  it('draws the member journey as a flowchart with ids, channels and durations', () => {
    expect(renderJourneyMermaid(loadShippedJourney('member'))).toBe(
      [
        'flowchart TD',
        "  %% member-nurture (tier member): Member nurture: a beginner live session, the members' group, then the member price",
        '  journey_start(("start")) --> live_session_replay',
        '  live_session_replay["Content: beginner-live-session-replay<br/>via official-account"]',
        '  wait_after_replay{{"Wait 2 days"}}',
        '  members_group[/"Invite to group: pm-career-change-members<br/>via direct-message"/]',
        '  wait_in_group{{"Wait 4 days"}}',
        '  member_price[["Offer: pm-course-member-price<br/>valid 5 days, via direct-message"]]',
        '  done(["Exit"])',
        '  live_session_replay --> wait_after_replay',
        '  wait_after_replay --> members_group',
        '  members_group --> wait_in_group',
        '  wait_in_group --> member_price',
        '  member_price --> done',
        '',
      ].join('\n'),
    );
  });

  it('labels both arms of a branch and shows a local-time wait', () => {
    const visitor = renderJourneyMermaid(loadShippedJourney('visitor'));
    expect(visitor).toContain('  opened_cases{"Opened pm-beginner-case-studies?<br/>within 2 days of beginner_cases"}\n');
    expect(visitor).toContain('  opened_cases -- engaged --> career_change_group\n');
    expect(visitor).toContain('  opened_cases -- not engaged --> success_story\n');
    expect(renderJourneyMermaid(loadShippedJourney('core'))).toContain('  evening{{"Wait until 19:30 local time"}}\n');
  });

  it('renames ids Mermaid reserves and escapes quotes in labels', () => {
    const document = journeyDocument();
    const steps = (document['steps'] as Array<Record<string, unknown>>).map((step) =>
      step['id'] === 'done' ? { id: 'end', type: 'exit', description: 'Say "thanks" <3' } : step['next'] === 'done' ? { ...step, next: 'end' } : step,
    );
    const journey = checkJourneyDocument('journeys/member.json', { ...document, steps }, { tierIds: [...TIERS], expectedTier: 'member' }).journey!;
    const text = renderJourneyMermaid(journey);
    expect(text).toContain('  end_step(["Say #quot;thanks#quot; #lt;3"])\n');
    expect(text).toContain('  course --> end_step\n');
  });
});

describe('strata journey show', () => {
  it('prints the Mermaid text of the tier it is given', async () => {
    const written: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stdout.write;
    const asked: string[] = [];
    try {
      const program = new Command('strata').exitOverride();
      program.addCommand(journeyCommand(async (tier) => (asked.push(tier), loadShippedJourney('member'))));
      await program.parseAsync(['journey', 'show', 'member'], { from: 'user' });
    } finally {
      process.stdout.write = original;
    }
    expect(asked).toEqual(['member']);
    expect(written).toEqual([renderJourneyMermaid(loadShippedJourney('member'))]);
  });
});
