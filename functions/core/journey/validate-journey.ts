/**
 * Checks a journey file and returns every problem at once, each with the file, the JSON pointer, what is wrong
 * and how to fix it. Shape errors come from zod; the graph checks (ids, reachability, loops, the order rule) run
 * on every step that has a valid shape, so that one broken step does not hide the problems of the others.
 */
import type { z } from 'zod';
import { jsonPointer, type Problem } from '../errors.js';
import { isValidTimeZone } from '../dates.js';
import { didYouMean } from '../suggest.js';
import { type ChannelConfig, unknownChannelProblem } from '../channels.js';
import { describeValueIssue, valueAtPath } from '../zod-issues.js';
import { describeDuration } from './compile-journey.js';
import { loopWalk, loops, reachableSteps, stepLinks } from './journey-graph.js';
import {
  STEP_TYPES,
  branchStepSchema,
  contentStepSchema,
  exitStepSchema,
  inviteStepSchema,
  isSendStep,
  journeySchema,
  journeySettingsSchema,
  journeyStepSchema,
  offerStepSchema,
  waitStepSchema,
  type BranchStep,
  type JourneyDefinition,
  type JourneyStep,
} from './journey-schema.js';

export interface JourneyCheckContext {
  tierIds: string[];
  expectedTier: string;
  /** The channels steps may name; unchecked when channels.json itself has problems (reported there). */
  channels?: ChannelConfig;
}

/** Field names of the format, for "did you mean" on a misspelled key. */
const FORMAT_FIELDS = [
  ...Object.keys(journeySchema.shape),
  ...Object.keys(journeySettingsSchema.shape),
  ...[contentStepSchema, inviteStepSchema, offerStepSchema, waitStepSchema, branchStepSchema, exitStepSchema].flatMap((s) => Object.keys(s.shape)),
  'start',
  'end',
  'timezone',
  'timezoneAttribute',
  'maxSends',
  'days',
  'conversion',
  'optOut',
  'tierChange',
  'where',
];

const FIELD_HINTS: Record<string, string> = {
  templateId: 'name the content template to send, for example "pm-beginner-case-studies"',
  groupId: 'name the community group to invite to, for example "zero-experience-career-change"',
  offerId: 'name the offer to make, for example "pm-course-member-price"',
  channel: 'name a channel defined in channels.json, for example "official-account"',
  next: 'use the id of the step that follows',
  expiryDays: 'a whole number of days, 1 to 90',
  timeoutDays: 'a whole number of days, 0 to 30',
  days: 'a whole number of days, 0 to 90; for part of a day use "hours"',
  hours: 'a whole number of hours, 0 to 23',
  holdoutPercent: 'a share from 0 to 50: the users held out get nothing, so more than half leaves too few treated users to learn from',
  'frequencyCap.maxSends': 'a whole number of sends, 1 to 50',
  'frequencyCap.days': 'a whole number of days, 1 to 60',
  id: 'lower-case letters, digits and _ (steps) or - (journeys), starting with a letter',
  start: 'use the id of the first step',
  since: 'use the id of an earlier content or invite step',
  engaged: 'use the id of the step taken when the user engaged',
  notEngaged: 'use the id of the step taken when the user did not engage in time',
  name: 'a short name people will read, at most 100 characters',
  type: 'use one of: ' + STEP_TYPES.join(', '),
};

/** For anything without a better hint: the schema is where the format is spelled out. */
const SCHEMA_HINT = 'see schemas/journey.schema.json; an editor shows it when the file names its "$schema"';

export function checkJourneyDocument(
  file: string,
  document: unknown,
  context: JourneyCheckContext,
): { journey?: JourneyDefinition; problems: Problem[] } {
  const problems: Problem[] = [];
  const report = (path: ReadonlyArray<string | number>, message: string, hint?: string): void => {
    problems.push({ file, pointer: jsonPointer(path), message, ...(hint ? { hint } : {}) });
  };

  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    report([], 'a journey file must hold one JSON object', 'start from one of the journeys in journeys/');
    return { problems };
  }
  const raw = document as Record<string, unknown>;

  const parsed = journeySchema.safeParse(document);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) reportIssue(issue, document, report);
  }

  checkTier(raw['tier'], context, report);
  checkSettings(raw['settings'], report);
  checkSteps(raw, report);
  if (context.channels) problems.push(...channelProblems(file, raw, context.channels));

  return parsed.success && problems.length === 0 ? { journey: parsed.data, problems } : { problems };
}

/** Send steps naming a channel that is not defined; checked on the raw steps so a broken sibling hides nothing. */
function channelProblems(file: string, raw: Record<string, unknown>, channels: ChannelConfig): Problem[] {
  if (!Array.isArray(raw['steps'])) return [];
  return raw['steps'].flatMap((step: unknown, index): Problem[] => {
    const parsed = journeyStepSchema.safeParse(step);
    if (!parsed.success || !isSendStep(parsed.data) || parsed.data.channel in channels.channels) return [];
    return [unknownChannelProblem(file, jsonPointer(['steps', index, 'channel']), parsed.data.channel, channels)];
  });
}

type Report = (path: ReadonlyArray<string | number>, message: string, hint?: string) => void;

function reportIssue(issue: z.core.$ZodIssue, document: unknown, report: Report): void {
  const path = issue.path.filter((part): part is string | number => typeof part !== 'symbol');
  const field = path[path.length - 1];
  const hint =
    typeof field === 'string' ? (FIELD_HINTS[path.includes('frequencyCap') ? `frequencyCap.${field}` : field] ?? FIELD_HINTS[field]) : undefined;
  const actual = valueAtPath(document, path);
  const described = describeValueIssue(issue, actual, hint);
  if (described) {
    report(path, described.message, described.hint);
    return;
  }
  switch (issue.code) {
    case 'unrecognized_keys':
      for (const key of issue.keys) report([...path, key], `"${key}" is not a field here`, misplacedKeyHint(key));
      return;
    case 'invalid_union':
      if (field === 'type') {
        report(
          path,
          `${JSON.stringify(actual)} is not a step type; a step type must be one of ${STEP_TYPES.join(', ')}`,
          typeof actual === 'string' ? didYouMean(actual, STEP_TYPES, 'pick one of the step types') : 'pick one of the step types',
        );
        return;
      }
      report(path, issue.message, hint ?? SCHEMA_HINT);
      return;
    case 'invalid_type':
      if (actual === undefined && issue.message.startsWith('Invalid input')) {
        report(path, `${String(field)} is required`, hint ?? SCHEMA_HINT);
        return;
      }
      report(path, issue.message, hint ?? SCHEMA_HINT);
      return;
    default:
      report(path, issue.message, hint ?? SCHEMA_HINT);
  }
}

const SETTINGS_FIELDS = new Set(Object.keys(journeySettingsSchema.shape));

function misplacedKeyHint(key: string): string {
  if (SETTINGS_FIELDS.has(key)) return `move it into "settings"`;
  if (FORMAT_FIELDS.includes(key)) return 'remove it: it is a field of another kind of step or setting';
  return didYouMean(key, FORMAT_FIELDS, 'remove it');
}

function checkTier(tier: unknown, context: JourneyCheckContext, report: Report): void {
  if (typeof tier !== 'string') return;
  if (!context.tierIds.includes(tier)) {
    report(
      ['tier'],
      `tier "${tier}" is not a tier of this ruleset (tiers: ${context.tierIds.join(', ')})`,
      didYouMean(tier, context.tierIds, `set it to "${context.expectedTier}"`),
    );
  } else if (tier !== context.expectedTier) {
    report(
      ['tier'],
      `tier is "${tier}", but this file is the journey of tier "${context.expectedTier}"`,
      `set "tier": "${context.expectedTier}", or point tier "${tier}" at this file in rules/tiers.json`,
    );
  }
}

function checkSettings(settings: unknown, report: Report): void {
  const parsed = journeySettingsSchema.safeParse(settings);
  if (!parsed.success) return;
  const quiet = parsed.data.quietHours;
  if (!quiet) return;
  if (quiet.start === quiet.end) {
    report(['settings', 'quietHours', 'end'], 'quiet hours start and end at the same time', 'for example "start": "21:00", "end": "08:00"');
  }
  if (quiet.timezone !== undefined && !isValidTimeZone(quiet.timezone)) {
    report(['settings', 'quietHours', 'timezone'], `"${quiet.timezone}" is not an IANA time zone`, 'for example "Asia/Shanghai"');
  }
}

interface StepEntry {
  index: number;
  step: JourneyStep;
}

function checkSteps(raw: Record<string, unknown>, report: Report): void {
  if (!Array.isArray(raw['steps'])) return;
  const rawSteps: unknown[] = raw['steps'];

  // Every id a step claims, valid or not, so that a link to a step with a broken shape is not also "unknown".
  const knownIds = new Set<string>();
  const firstIndexOf = new Map<string, number>();
  const entries: StepEntry[] = [];
  rawSteps.forEach((rawStep, index) => {
    const id = rawStep !== null && typeof rawStep === 'object' ? (rawStep as Record<string, unknown>)['id'] : undefined;
    if (typeof id === 'string') {
      knownIds.add(id);
      const first = firstIndexOf.get(id);
      if (first !== undefined) report(['steps', index, 'id'], `step id "${id}" is already used by /steps/${first}`, 'give every step its own id');
      else firstIndexOf.set(id, index);
    }
    const parsed = journeyStepSchema.safeParse(rawStep);
    if (parsed.success && firstIndexOf.get(parsed.data.id) === index) entries.push({ index, step: parsed.data });
  });
  const allShapesValid = entries.length === rawSteps.length;
  const byId = new Map(entries.map((entry) => [entry.step.id, entry.step]));
  const indexOf = new Map(entries.map((entry) => [entry.step.id, entry.index]));

  let allLinksKnown = true;
  const checkLink = (path: ReadonlyArray<string | number>, target: string): void => {
    if (!knownIds.has(target)) {
      allLinksKnown = false;
      report(path, `refers to step "${target}", which does not exist`, didYouMean(target, knownIds, 'use the id of one of the steps'));
    }
  };
  const start = typeof raw['start'] === 'string' ? raw['start'] : undefined;
  if (start !== undefined && start !== '') checkLink(['start'], start);

  for (const { index, step } of entries) {
    for (const { field, target } of stepLinks(step)) checkLink(['steps', index, field], target);
    checkStepFields(index, step, report, checkLink);
  }

  if (start === undefined || !byId.has(start)) return;
  const reachable = reachableSteps(start, byId);
  // A broken shape or link already explains why the steps behind it look unreachable; say it once.
  if (allShapesValid && allLinksKnown) {
    for (const { index, step } of entries) {
      if (!reachable.has(step.id)) {
        report(['steps', index], `step "${step.id}" is never reached from start "${start}"`, 'link to it from another step, or delete it');
      }
    }
  }

  const ordered = entries.map((entry) => entry.step.id);
  const waitFree = loops(
    ordered.filter((id) => byId.get(id)!.type !== 'wait'),
    byId,
  );
  const inWaitFreeLoop = new Set(waitFree.flat());
  for (const component of waitFree) {
    const first = component.reduce((a, b) => (indexOf.get(a)! <= indexOf.get(b)! ? a : b));
    report(
      ['steps', indexOf.get(first)!],
      `steps ${loopWalk(first, component, byId)
        .map((id) => `"${id}"`)
        .join(' → ')} loop with no wait step in between`,
      'add a wait of at least 1 day inside the loop, or end it with an exit step',
    );
  }
  const allLoops = loops(ordered, byId);
  for (const component of allLoops) {
    if (component.some((id) => inWaitFreeLoop.has(id))) continue;
    checkLoopRound(component, byId, indexOf, report);
  }
  for (const component of allLoops) {
    for (const id of [...component].sort((a, b) => indexOf.get(a)! - indexOf.get(b)!)) {
      const step = byId.get(id)!;
      if (!isSendStep(step) || inWaitFreeLoop.has(id)) continue;
      report(
        ['steps', indexOf.get(id)!],
        `${step.type} step "${id}" is inside a loop, so it could send more than once in one journey run`,
        'each step sends at most once per run (its action id is stable); break the loop, or add a second step for the repeat',
      );
    }
  }

  for (const { index, step } of entries) {
    if (step.type === 'branch') checkBranchSince(index, step, start, byId, report);
  }
  checkContentBeforeOffer(start, byId, indexOf, report);
}

/** Step Functions fails a Standard execution at 25,000 history events (and stops it after one year). */
const HISTORY_EVENT_LIMIT = 25_000;
/** A loop must wait this long per round: then a year of rounds stays far below the history limit. */
const MIN_LOOP_ROUND_HOURS = 24;
/** The longest a Standard execution runs. */
const MAX_EXECUTION_DAYS = 365;

/** Hours a step waits for sure: a duration wait's length. A local-time wait may end within minutes, so 0. */
function guaranteedWaitHours(step: JourneyStep): number {
  return step.type === 'wait' && step.untilLocalTime === undefined ? (step.days ?? 0) * 24 + (step.hours ?? 0) : 0;
}

/**
 * History events of one pass through a step in the compiled state machine: a Wait state enters and exits (2);
 * a Task enters, is scheduled, starts, succeeds and exits (5), then its Choice enters and exits (2); a local-time
 * wait adds its Wait (2).
 */
function historyEventsPerPass(step: JourneyStep): number {
  switch (step.type) {
    case 'wait':
      return step.untilLocalTime === undefined ? 2 : 9;
    case 'content':
    case 'invite':
    case 'offer':
    case 'branch':
      return 7;
    case 'exit':
      return 1;
  }
}

/**
 * The loop with the least waiting per round inside a strongly connected component (the shortest cycle, by
 * guaranteed wait hours, through any of its steps), checked against the history limit: a wait/branch loop
 * without a send is allowed, but a user may stay in it for the whole journey, and each round adds history.
 */
function checkLoopRound(
  component: readonly string[],
  byId: ReadonlyMap<string, JourneyStep>,
  indexOf: ReadonlyMap<string, number>,
  report: Report,
): void {
  const inside = new Set(component);
  const successors = (id: string): string[] =>
    stepLinks(byId.get(id)!)
      .map((link) => link.target)
      .filter((target) => inside.has(target));
  let shortest: { hours: number; walk: string[] } | undefined;
  for (const from of component) {
    // Dijkstra from `from` with the hours of each step paid on leaving it; the cycle closes on a link back to `from`.
    const hoursTo = new Map<string, number>([[from, 0]]);
    const parent = new Map<string, string>();
    const done = new Set<string>();
    for (;;) {
      let current: string | undefined;
      for (const [id, hours] of hoursTo) if (!done.has(id) && (current === undefined || hours < hoursTo.get(current)!)) current = id;
      if (current === undefined) break;
      done.add(current);
      const leaving = hoursTo.get(current)! + guaranteedWaitHours(byId.get(current)!);
      for (const target of successors(current)) {
        if (target === from) {
          if (!shortest || leaving < shortest.hours) {
            const walk = [current];
            for (let at = parent.get(current); at !== undefined; at = parent.get(at)) walk.unshift(at);
            shortest = { hours: leaving, walk: [...walk, from] };
          }
          continue;
        }
        if (!done.has(target) && leaving < (hoursTo.get(target) ?? Infinity)) {
          hoursTo.set(target, leaving);
          parent.set(target, current);
        }
      }
    }
  }
  if (!shortest) return;
  const round = shortest.walk.slice(0, -1);
  const eventsPerRound = round.reduce((sum, id) => sum + historyEventsPerPass(byId.get(id)!), 0);
  const daysToLimit = ((HISTORY_EVENT_LIMIT / eventsPerRound) * shortest.hours) / 24;
  if (shortest.hours >= MIN_LOOP_ROUND_HOURS && daysToLimit > MAX_EXECUTION_DAYS) return;
  const waiting =
    shortest.hours === 0
      ? 'no fixed wait per round (a wait until a local time can end within minutes)'
      : `only ${describeDuration(Math.floor(shortest.hours / 24), shortest.hours % 24)} of waiting per round`;
  const reach = shortest.hours === 0 ? 'within days' : `in about ${Math.round(daysToLimit)} days`;
  // Told from the step that comes first in the file, like the other loop messages.
  const first = round.reduce((a, b) => (indexOf.get(a)! <= indexOf.get(b)! ? a : b));
  const rotated = [...round.slice(round.indexOf(first)), ...round.slice(0, round.indexOf(first)), first];
  report(
    ['steps', indexOf.get(first)!],
    `steps ${rotated.map((id) => `"${id}"`).join(' → ')} loop with ${waiting}: each round adds about ${eventsPerRound} events to the ` +
      `execution's history, so a user who stays in the loop reaches Step Functions' limit of ${HISTORY_EVENT_LIMIT.toLocaleString('en-US')} events ${reach}, and the journey fails`,
    'wait at least 1 day per round (for example "days": 1 on a wait step inside the loop), or leave the loop through an exit step',
  );
}

function checkStepFields(
  index: number,
  step: JourneyStep,
  report: Report,
  checkLink: (path: ReadonlyArray<string | number>, target: string) => void,
): void {
  switch (step.type) {
    case 'wait': {
      const hasDuration = step.days !== undefined || step.hours !== undefined;
      if (hasDuration && step.untilLocalTime !== undefined) {
        report(['steps', index], 'a wait step takes either a duration (days, hours) or untilLocalTime, not both', 'keep one of them');
      } else if (!hasDuration && step.untilLocalTime === undefined) {
        report(
          ['steps', index],
          'a wait step needs a duration (days and/or hours) or untilLocalTime',
          'for example "days": 2, or "untilLocalTime": "19:30"',
        );
      } else if (hasDuration && (step.days ?? 0) + (step.hours ?? 0) === 0) {
        report(['steps', index], 'a wait of 0 days and 0 hours does not wait', 'wait at least one hour, or remove the step');
      }
      return;
    }
    case 'offer':
      if (step.allowColdOffer && !step.reason?.trim()) {
        report(
          ['steps', index, 'reason'],
          'allowColdOffer is set but reason is empty',
          'say why this offer may go to a user who has had no content first',
        );
      }
      return;
    case 'branch':
      checkLink(['steps', index, 'since'], step.since);
      if (step.since === step.id)
        report(['steps', index, 'since'], 'a branch cannot check engagement with itself', 'name an earlier content or invite step');
      return;
    case 'content':
    case 'invite':
    case 'exit':
      return;
  }
}

function withArticle(word: string): string {
  return (/^[aeiou]/.test(word) ? 'an ' : 'a ') + word;
}

const SIGNAL_SOURCE: Record<BranchStep['signal'], 'content' | 'invite'> = {
  'content-opened': 'content',
  'content-completed': 'content',
  'group-joined': 'invite',
};

function checkBranchSince(index: number, branch: BranchStep, start: string, byId: ReadonlyMap<string, JourneyStep>, report: Report): void {
  const since = byId.get(branch.since);
  if (!since || since.id === branch.id) return;
  const wanted = SIGNAL_SOURCE[branch.signal];
  if (since.type !== wanted) {
    report(
      ['steps', index, 'since'],
      `signal "${branch.signal}" needs since to name ${withArticle(wanted)} step, but "${since.id}" is ${withArticle(since.type)} step`,
      wanted === 'content'
        ? 'point since at a content step before this branch, or use signal "group-joined" with an invite step'
        : 'point since at an invite step before this branch',
    );
    return;
  }
  // The branch reads the send time of `since` from the execution state, so `since` must be sent on every path to it.
  if (reachableSteps(start, byId, since.id).has(branch.id)) {
    report(
      ['steps', index, 'since'],
      `step "${since.id}" is not sent on every path to this branch, so there may be nothing to check engagement against`,
      `move the branch after "${since.id}" on every path`,
    );
  }
}

/**
 * The order rule: an offer must never reach a user who has had no content in this journey. Walks every path
 * from start with a flag "has passed a content step", and reports each offer reachable with the flag unset.
 */
function checkContentBeforeOffer(start: string, byId: ReadonlyMap<string, JourneyStep>, indexOf: ReadonlyMap<string, number>, report: Report): void {
  type Visit = { id: string; warm: boolean };
  const key = (visit: Visit): string => `${visit.id}|${visit.warm}`;
  const parent = new Map<string, Visit | undefined>();
  const first: Visit = { id: start, warm: byId.get(start)!.type === 'content' };
  parent.set(key(first), undefined);
  const queue: Visit[] = [first];
  const reported = new Set<string>();
  while (queue.length > 0) {
    const visit = queue.shift()!;
    const step = byId.get(visit.id)!;
    if (step.type === 'offer' && !visit.warm && !step.allowColdOffer && !reported.has(step.id)) {
      reported.add(step.id);
      const path: string[] = [];
      for (let at: Visit | undefined = visit; at; at = parent.get(key(at))) path.unshift(at.id);
      report(
        ['steps', indexOf.get(step.id)!],
        `offer step "${step.id}" can be reached with no content step before it (${path.map((id) => `"${id}"`).join(' → ')}): ` +
          'this is a cold offer, and Strata refuses it because pitching an offer to a user who has had no content first loses them',
        'put a content step on every path before it, or set "allowColdOffer": true with a "reason"',
      );
    }
    for (const { target } of stepLinks(step)) {
      const next = byId.get(target);
      if (!next) continue;
      const nextVisit: Visit = { id: target, warm: visit.warm || next.type === 'content' };
      if (parent.has(key(nextVisit))) continue;
      parent.set(key(nextVisit), visit);
      queue.push(nextVisit);
    }
  }
}
