import { describe, expect, it } from 'vitest';
import { checkJourneyDocument } from '../../functions/core/journey/validate-journey.js';
import { TIERS, journeyDocument, readJourneyDocument } from '../helpers/journey-fixtures.js';

const FILE = 'journeys/member.json';
const context = { tierIds: [...TIERS], expectedTier: 'member' };
const check = (document: unknown) => checkJourneyDocument(FILE, document, context);

type Step = Record<string, unknown>;
const steps = (): Step[] => journeyDocument()['steps'] as Step[];
const withSteps = (list: Step[], overrides: Record<string, unknown> = {}) => journeyDocument({ steps: list, ...overrides });
const changeStep = (id: string, change: Step): Step[] => steps().map((step) => (step['id'] === id ? { ...step, ...change } : step));

/** An invite first, then the offer: no content on the way. */
const coldOfferSteps = (offerChange: Step = {}): Step[] => [
  { id: 'group', type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message', next: 'pause' },
  { id: 'pause', type: 'wait', days: 3, next: 'course' },
  { id: 'course', type: 'offer', offerId: 'pm-course-member-price', expiryDays: 5, channel: 'direct-message', next: 'done', ...offerChange },
  { id: 'done', type: 'exit' },
];

describe('checkJourneyDocument', () => {
  it.each(TIERS)('accepts the shipped journeys/%s.json', (tier) => {
    const checked = checkJourneyDocument(`journeys/${tier}.json`, readJourneyDocument(tier), { tierIds: [...TIERS], expectedTier: tier });
    expect(checked.problems).toEqual([]);
    expect(checked.journey?.tier).toBe(tier);
  });

  it('fills the defaults of the settings', () => {
    const { journey } = check(journeyDocument({ settings: { quietHours: { start: '21:00', end: '08:00' } } }));
    expect(journey?.settings).toEqual({ exitOn: {}, quietHours: { start: '21:00', end: '08:00', timezoneAttribute: 'timezone' }, holdoutPercent: 0 });
  });

  it('refuses a cold offer, naming the path that reaches it', () => {
    expect(check(withSteps(coldOfferSteps(), { start: 'group' }))).toEqual({
      problems: [
        {
          file: FILE,
          pointer: '/steps/2',
          message:
            'offer step "course" can be reached with no content step before it ("group" → "pause" → "course"): this is a cold offer, ' +
            'and Strata refuses it because pitching an offer to a user who has had no content first loses them',
          hint: 'put a content step on every path before it, or set "allowColdOffer": true with a "reason"',
        },
      ],
    });
  });

  it('refuses an offer that only one branch arm reaches warm', () => {
    const list: Step[] = [
      { id: 'group', type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message', next: 'pause' },
      { id: 'pause', type: 'wait', days: 2, next: 'joined' },
      { id: 'joined', type: 'branch', since: 'group', signal: 'group-joined', timeoutDays: 2, engaged: 'course', notEngaged: 'replay' },
      { id: 'replay', type: 'content', templateId: 'beginner-live-session-replay', channel: 'official-account', next: 'course' },
      { id: 'course', type: 'offer', offerId: 'pm-course-member-price', expiryDays: 5, channel: 'direct-message', next: 'done' },
      { id: 'done', type: 'exit' },
    ];
    const { problems } = check(withSteps(list, { start: 'group' }));
    expect(problems.map((p) => [p.pointer, p.message.slice(0, p.message.indexOf(':'))])).toEqual([
      ['/steps/4', 'offer step "course" can be reached with no content step before it ("group" → "pause" → "joined" → "course")'],
    ]);
  });

  it('accepts a cold offer with allowColdOffer and a reason', () => {
    const checked = check(
      withSteps(coldOfferSteps({ allowColdOffer: true, reason: 'Members who joined the group already asked for the price' }), { start: 'group' }),
    );
    expect(checked.problems).toEqual([]);
    expect(checked.journey?.steps[2]).toMatchObject({ allowColdOffer: true });
  });

  it('wants a reason with allowColdOffer', () => {
    expect(check(withSteps(coldOfferSteps({ allowColdOffer: true, reason: ' ' }), { start: 'group' })).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/2/reason',
        message: 'allowColdOffer is set but reason is empty',
        hint: 'say why this offer may go to a user who has had no content first',
      },
    ]);
  });

  it('reports an unknown step id with a "did you mean" hint, and only that', () => {
    expect(check(withSteps(changeStep('pause', { next: 'gruop' }))).problems).toEqual([
      { file: FILE, pointer: '/steps/1/next', message: 'refers to step "gruop", which does not exist', hint: 'did you mean "group"?' },
    ]);
    expect(check(journeyDocument({ start: 'wellcome' })).problems).toEqual([
      { file: FILE, pointer: '/start', message: 'refers to step "wellcome", which does not exist', hint: 'did you mean "welcome"?' },
    ]);
  });

  it('reports an unreachable step', () => {
    const list = [...steps(), { id: 'old_offer', type: 'offer', offerId: 'pm-course-full-price', expiryDays: 3, channel: 'sms', next: 'done' }];
    expect(check(withSteps(list)).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/6',
        message: 'step "old_offer" is never reached from start "welcome"',
        hint: 'link to it from another step, or delete it',
      },
    ]);
  });

  it('reports a loop with no wait in it', () => {
    const list = changeStep('welcome', { next: 'group' }).map((step) => (step['id'] === 'group' ? { ...step, next: 'welcome' } : step));
    const { problems } = check(withSteps(list.filter((step) => step['id'] === 'welcome' || step['id'] === 'group')));
    expect(problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/0',
        message: 'steps "welcome" → "group" → "welcome" loop with no wait step in between',
        hint: 'add a wait of at least 1 day inside the loop, or end it with an exit step',
      },
    ]);
  });

  describe('wait/branch loops without a send (Step Functions history: 25,000 events per execution)', () => {
    /** Polls for the replay being opened: the branch, then a wait, then the branch again. */
    const pollingSteps = (wait: Step): Step[] => [
      { id: 'welcome', type: 'content', templateId: 'beginner-live-session-replay', channel: 'official-account', next: 'opened' },
      { id: 'opened', type: 'branch', since: 'welcome', signal: 'content-opened', timeoutDays: 1, engaged: 'group', notEngaged: 'check_again' },
      { id: 'check_again', type: 'wait', next: 'opened', ...wait },
      { id: 'group', type: 'invite', groupId: 'pm-career-change-members', channel: 'direct-message', next: 'done' },
      { id: 'done', type: 'exit' },
    ];

    it('refuses a loop that waits less than a day per round, saying when it would hit the limit', () => {
      expect(check(withSteps(pollingSteps({ hours: 1 }))).problems).toEqual([
        {
          file: FILE,
          pointer: '/steps/1',
          message:
            'steps "opened" → "check_again" → "opened" loop with only 1 hour of waiting per round: each round adds about 9 events to the ' +
            "execution's history, so a user who stays in the loop reaches Step Functions' limit of 25,000 events in about 116 days, and the journey fails",
          hint: 'wait at least 1 day per round (for example "days": 1 on a wait step inside the loop), or leave the loop through an exit step',
        },
      ]);
    });

    it('counts a wait until a local time as no wait at all', () => {
      const [problem] = check(withSteps(pollingSteps({ untilLocalTime: '19:30' }))).problems;
      expect(problem?.message).toContain('loop with no fixed wait per round (a wait until a local time can end within minutes)');
      expect(problem?.message).toContain("reaches Step Functions' limit of 25,000 events within days");
    });

    it('accepts a loop that waits a day per round', () => {
      expect(check(withSteps(pollingSteps({ days: 1 }))).problems).toEqual([]);
      expect(check(withSteps(pollingSteps({ hours: 23 }))).problems).toHaveLength(1);
    });

    it('judges a loop by its shortest round', () => {
      const list: Step[] = [
        ...pollingSteps({ days: 2 }).map((step) => (step['id'] === 'opened' ? { ...step, notEngaged: 'pick' } : step)),
        {
          id: 'pick',
          type: 'branch',
          since: 'welcome',
          signal: 'content-completed',
          timeoutDays: 0,
          engaged: 'check_again',
          notEngaged: 'short_pause',
        },
        { id: 'short_pause', type: 'wait', hours: 6, next: 'opened' },
      ];
      expect(check(withSteps(list)).problems.map((problem) => problem.message.slice(0, problem.message.indexOf(':')))).toEqual([
        'steps "opened" → "pick" → "short_pause" → "opened" loop with only 6 hours of waiting per round',
      ]);
    });
  });

  it('reports a send step inside a loop, even with a wait', () => {
    const { problems } = check(
      withSteps(changeStep('pause_again', { next: 'group' }).filter((step) => step['id'] !== 'course' && step['id'] !== 'done')),
    );
    expect(problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/2',
        message: 'invite step "group" is inside a loop, so it could send more than once in one journey run',
        hint: 'each step sends at most once per run (its action id is stable); break the loop, or add a second step for the repeat',
      },
    ]);
  });

  it('reports a missing or empty template id', () => {
    const { templateId: _omitted, ...withoutTemplate } = steps()[0]!;
    expect(check(withSteps([withoutTemplate, ...steps().slice(1)])).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/0/templateId',
        message: 'templateId is required',
        hint: 'name the content template to send, for example "pm-beginner-case-studies"',
      },
    ]);
    expect(check(withSteps(changeStep('welcome', { templateId: '  ' }))).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/0/templateId',
        message: 'templateId must not be empty',
        hint: 'name the content template to send, for example "pm-beginner-case-studies"',
      },
    ]);
  });

  it('reports a tier that is not the expected one, or not a tier at all', () => {
    expect(check(journeyDocument({ tier: 'visitor' })).problems).toEqual([
      {
        file: FILE,
        pointer: '/tier',
        message: 'tier is "visitor", but this file is the journey of tier "member"',
        hint: 'set "tier": "member", or point tier "visitor" at this file in rules/tiers.json',
      },
    ]);
    expect(check(journeyDocument({ tier: 'membr' })).problems).toEqual([
      {
        file: FILE,
        pointer: '/tier',
        message: 'tier "membr" is not a tier of this ruleset (tiers: visitor, member, active, core)',
        hint: 'did you mean "member"?',
      },
    ]);
  });

  it('reports duplicate step ids', () => {
    expect(check(withSteps([...steps(), { id: 'pause', type: 'exit' }])).problems).toEqual([
      { file: FILE, pointer: '/steps/6/id', message: 'step id "pause" is already used by /steps/1', hint: 'give every step its own id' },
    ]);
  });

  it('checks that a branch looks at an earlier send of the right kind', () => {
    const branch = (since: string, signal: string): Step => ({
      id: 'check',
      type: 'branch',
      since,
      signal,
      timeoutDays: 2,
      engaged: 'course',
      notEngaged: 'done',
    });
    const list = (since: string, signal: string): Step[] => [...changeStep('pause_again', { next: 'check' }), branch(since, signal)];
    expect(check(withSteps(list('welcome', 'group-joined'))).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/6/since',
        message: 'signal "group-joined" needs since to name an invite step, but "welcome" is a content step',
        hint: 'point since at an invite step before this branch',
      },
    ]);
    expect(check(withSteps(list('group', 'group-joined'))).problems).toEqual([]);
    const beforeSince = [...changeStep('pause', { next: 'check' }), { ...branch('group', 'group-joined'), engaged: 'group', notEngaged: 'group' }];
    expect(check(withSteps(beforeSince)).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/6/since',
        message: 'step "group" is not sent on every path to this branch, so there may be nothing to check engagement against',
        hint: 'move the branch after "group" on every path',
      },
    ]);
  });

  it('maps shape errors to pointers and readable messages, all at once', () => {
    // A channel name is checked against channels.json by the ruleset loader (test/unit/channels.test.ts).
    const list = changeStep('welcome', { type: 'contnet' }).map((step) =>
      step['id'] === 'group' ? { ...step, channel: 'wechat', groupID: 'x' } : step,
    );
    expect(check(withSteps(list, { holdoutPercent: 10 })).problems).toEqual([
      {
        file: FILE,
        pointer: '/steps/0/type',
        message: '"contnet" is not a step type; a step type must be one of content, invite, offer, wait, branch, exit',
        hint: 'did you mean "content"?',
      },
      { file: FILE, pointer: '/steps/2/groupID', message: '"groupID" is not a field here', hint: 'did you mean "groupId"?' },
      { file: FILE, pointer: '/holdoutPercent', message: '"holdoutPercent" is not a field here', hint: 'move it into "settings"' },
    ]);
  });

  it('checks waits and quiet hours', () => {
    const list = changeStep('pause', { days: undefined, untilLocalTime: undefined });
    const settings = { quietHours: { start: '21:00', end: '21:00', timezone: 'Asia/Shang_hai' } };
    expect(check(withSteps(list, { settings })).problems).toEqual([
      {
        file: FILE,
        pointer: '/settings/quietHours/end',
        message: 'quiet hours start and end at the same time',
        hint: 'for example "start": "21:00", "end": "08:00"',
      },
      {
        file: FILE,
        pointer: '/settings/quietHours/timezone',
        message: '"Asia/Shang_hai" is not an IANA time zone',
        hint: 'for example "Asia/Shanghai"',
      },
      {
        file: FILE,
        pointer: '/steps/1',
        message: 'a wait step needs a duration (days and/or hours) or untilLocalTime',
        hint: 'for example "days": 2, or "untilLocalTime": "19:30"',
      },
    ]);
  });

  it('wants a JSON object', () => {
    expect(check([]).problems).toEqual([
      { file: FILE, pointer: '', message: 'a journey file must hold one JSON object', hint: 'start from one of the journeys in journeys/' },
    ]);
  });
});
