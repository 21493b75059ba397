import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { findJourney, journeyCommand } from '../../functions/cli/commands/journey.js';
import { UsageError } from '../../functions/cli/output.js';
import { renderJourneyMermaid } from '../../functions/core/journey/render-mermaid.js';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, loadShippedJourney } from '../helpers/journey-fixtures.js';

describe('renderJourneyMermaid', () => {
  it('draws the member journey as a flowchart with its settings, ids, channels, durations and descriptions', () => {
    expect(renderJourneyMermaid(loadShippedJourney('member'))).toBe(
      [
        'flowchart TD',
        "  %% member-nurture (tier member): Member nurture: a beginner live session, the members' group, then the member price",
        '  journey_settings>"Member nurture: a beginner live session, the members\' group, then the member price<br/>' +
          'Holdout: 10 % get nothing, to measure uplift<br/>' +
          "Quiet hours: 21:00 to 08:00 in the user's #quot;timezone#quot; zone, else Asia/Shanghai<br/>" +
          'Frequency cap: at most 3 sends in 7 days, across journeys<br/>' +
          'Exits on: a tier change, an opt-out, conversion order.paid where product = pm-course"]',
        '  journey_settings ~~~ journey_start',
        '  journey_start(("start")) --> live_session_replay',
        '  live_session_replay["Content: beginner-live-session-replay<br/>via official-account<br/>Replay of the beginner live session: a day in the life of a junior PM"]',
        '  wait_after_replay{{"Wait 2 days"}}',
        '  members_group[/"Invite to group: pm-career-change-members<br/>via direct-message<br/>The members\' career-change group: weekly live Q&A and practice feedback"/]',
        '  wait_in_group{{"Wait 4 days"}}',
        '  member_price[["Offer: pm-course-member-price<br/>valid 5 days, via direct-message<br/>The product-manager course at the member price"]]',
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
    expect(visitor).toContain(
      '  opened_cases{"Opened pm-beginner-case-studies?<br/>since beginner_cases<br/>Did they open the case studies within two days?"}\n',
    );
    expect(visitor).toContain('  opened_cases -- engaged --> career_change_group\n');
    expect(visitor).toContain('  opened_cases -- not engaged --> success_story\n');
    expect(renderJourneyMermaid(loadShippedJourney('core'))).toContain(
      '  evening{{"Wait until 19:30 local time<br/>Offers to core members go out in the evening, when they read their messages"}}\n',
    );
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
  const shipped = () => Object.fromEntries(TIERS.map((tier) => [tier, loadShippedJourney(tier)]));

  it('prints the Mermaid text of the tier it is given, forgiving its case', async () => {
    for (const typed of ['member', 'Member']) {
      const written: string[] = [];
      const original = process.stdout.write.bind(process.stdout);
      process.stdout.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stdout.write;
      try {
        const program = new Command('strata').exitOverride();
        program.addCommand(journeyCommand(async () => shipped()));
        await program.parseAsync(['journey', 'show', typed], { from: 'user' });
      } finally {
        process.stdout.write = original;
      }
      expect(written).toEqual([renderJourneyMermaid(loadShippedJourney('member'))]);
    }
  });

  it('says "did you mean" for a misspelt tier', () => {
    expect(() => findJourney(shipped(), 'membr')).toThrow(new UsageError('journey show: no journey for tier "membr"', 'did you mean "member"?'));
    expect(() => findJourney(shipped(), 'gold')).toThrow(/no journey for tier "gold"/);
  });
});
