/**
 * The journey changes between two versions of a project that matter to users already in a journey: removed,
 * renamed or replaced steps, changed waits, changed sends and branches, changed routes and settings, and
 * signals the new version no longer records. Each change says what happens to those users.
 *
 * Under version pinning (see compile-journey.ts) a running execution finishes on the version it started with, so
 * most changes only reach new entries. Two things still reach running executions: a removed journey (its state
 * machine is deleted, which ends them) and a retired signal (ingest records only the signals of the deployed
 * journeys, so an old execution waiting for one never sees it).
 */
import { assertNever } from '../errors.js';
import { describeDuration } from './compile-journey.js';
import { stepLinks } from './journey-graph.js';
import type { JourneyDefinition, JourneyStep } from './journey-schema.js';
import { branchSignalFilter, conversionSignalFilter, journeySignalFilters } from './signals.js';

export type JourneyChangeKind =
  | 'journey-removed'
  | 'journey-renamed'
  | 'step-removed'
  | 'step-renamed'
  | 'step-added'
  | 'wait-changed'
  | 'send-changed'
  | 'branch-changed'
  | 'route-changed'
  | 'settings-changed'
  | 'signal-retired';

export interface JourneyChange {
  tier: string;
  /** The journey id in the earlier version. */
  journeyId: string;
  kind: JourneyChangeKind;
  stepId?: string;
  /** What changed, for example `templateId "a" → "b"`. */
  detail: string;
  /** What happens to users already in the journey, and to new entries. */
  effect: string;
}

const KEEP_OLD = 'executions already running keep the old';
const NEW_GET_NEW = 'users who enter after the deploy get the new one';

/** Journeys by tier, before and after. */
export function journeyChanges(before: Record<string, JourneyDefinition>, after: Record<string, JourneyDefinition>): JourneyChange[] {
  const changes: JourneyChange[] = [];
  for (const tier of Object.keys(before).sort()) {
    const old = before[tier]!;
    const current = after[tier];
    const add = (change: Omit<JourneyChange, 'tier' | 'journeyId'>): void => void changes.push({ tier, journeyId: old.id, ...change });
    if (!current) {
      add({
        kind: 'journey-removed',
        detail: `the journey "${old.id}" of tier ${tier} is removed`,
        effect:
          'the deploy deletes its state machine, and Step Functions ends every running execution at its next step: those users get nothing more from it',
      });
      continue;
    }
    if (current.id !== old.id) {
      add({
        kind: 'journey-renamed',
        detail: `journey id "${old.id}" → "${current.id}"`,
        effect: `${KEEP_OLD} id in their actions; new entries get the new id, and the holdout is drawn again for them (its hash includes the id)`,
      });
    }
    for (const change of settingsChanges(old, current)) add(change);
    for (const change of stepChanges(old, current)) add(change);
  }
  changes.push(...retiredSignals(before, after));
  return changes;
}

function settingsChanges(old: JourneyDefinition, current: JourneyDefinition): Array<Omit<JourneyChange, 'tier' | 'journeyId'>> {
  const changes: Array<Omit<JourneyChange, 'tier' | 'journeyId'>> = [];
  const describe = (value: unknown): string => (value === undefined ? 'none' : JSON.stringify(value));
  const compare = (name: string, before: unknown, after: unknown): void => {
    if (describe(before) === describe(after)) return;
    changes.push({
      kind: 'settings-changed',
      detail: `${name} ${describe(before)} → ${describe(after)}`,
      effect: `${KEEP_OLD} ${name} until they finish; ${NEW_GET_NEW}`,
    });
  };
  compare('quietHours', old.settings.quietHours, current.settings.quietHours);
  compare('frequencyCap', old.settings.frequencyCap, current.settings.frequencyCap);
  compare('holdoutPercent', old.settings.holdoutPercent, current.settings.holdoutPercent);
  compare('exitOn.conversion', old.settings.exitOn.conversion, current.settings.exitOn.conversion);
  return changes;
}

function stepChanges(old: JourneyDefinition, current: JourneyDefinition): Array<Omit<JourneyChange, 'tier' | 'journeyId'>> {
  const changes: Array<Omit<JourneyChange, 'tier' | 'journeyId'>> = [];
  const currentById = new Map(current.steps.map((step) => [step.id, step]));
  const oldIds = new Set(old.steps.map((step) => step.id));
  const added = current.steps.filter((step) => !oldIds.has(step.id));
  // A rename keeps what the step does: the one added step of the same type and content.
  const renames = new Map<string, string>();
  for (const step of old.steps) {
    if (currentById.has(step.id)) continue;
    const candidates = added.filter((candidate) => ![...renames.values()].includes(candidate.id) && contentKey(candidate) === contentKey(step));
    if (candidates.length === 1) renames.set(step.id, candidates[0]!.id);
  }
  const renamedTo = new Set(renames.values());

  for (const step of old.steps) {
    const now = currentById.get(step.id);
    if (now && now.type === step.type) {
      changes.push(...sameStepChanges(step, now, renames));
      continue;
    }
    if (now) {
      changes.push({
        kind: 'step-removed',
        stepId: step.id,
        detail: `step "${step.id}" was ${describeStep(step)}, and is now ${describeStep(now)}`,
        effect: `executions already running still get the ${step.type} step; ${NEW_GET_NEW}`,
      });
      continue;
    }
    const to = renames.get(step.id);
    if (to !== undefined) {
      changes.push({
        kind: 'step-renamed',
        stepId: step.id,
        detail: `step "${step.id}" (${describeStep(step)}) is renamed to "${to}"`,
        effect: `executions already running still run it as "${step.id}" (their action ids keep the old name); new entries run "${to}"`,
      });
      const renamed = currentById.get(to)!;
      changes.push(...sameStepChanges({ ...step, id: to } as JourneyStep, renamed, renames).map((change) => ({ ...change, stepId: step.id })));
      continue;
    }
    changes.push({
      kind: 'step-removed',
      stepId: step.id,
      detail: `step "${step.id}" (${describeStep(step)}) is removed`,
      effect: 'executions already running still take it (they finish on the version they started with); new entries never reach it',
    });
  }
  for (const step of added) {
    if (renamedTo.has(step.id)) continue;
    changes.push({
      kind: 'step-added',
      stepId: step.id,
      detail: `step "${step.id}" (${describeStep(step)}) is new`,
      effect: 'executions already running never get it; only users who enter after the deploy do',
    });
  }
  return changes;
}

/** Changes to one step kept under its id (or renamed: `renames` maps old ids to new, so a renamed target is no route change). */
function sameStepChanges(old: JourneyStep, now: JourneyStep, renames: ReadonlyMap<string, string>): Array<Omit<JourneyChange, 'tier' | 'journeyId'>> {
  const changes: Array<Omit<JourneyChange, 'tier' | 'journeyId'>> = [];
  const fields = differingFields(old, now, ['templateId', 'groupId', 'offerId', 'channel', 'expiryDays']);
  if (fields.length > 0) {
    changes.push({
      kind: 'send-changed',
      stepId: old.id,
      detail: `${old.type} step "${old.id}": ${fields.join(', ')}`,
      effect: `${KEEP_OLD} ${old.type} if they have not reached it yet; ${NEW_GET_NEW}`,
    });
  }
  if (old.type === 'wait' && now.type === 'wait' && describeWait(old) !== describeWait(now)) {
    changes.push({
      kind: 'wait-changed',
      stepId: old.id,
      detail: `wait "${old.id}": ${describeWait(old)} → ${describeWait(now)}`,
      effect: `users already in this wait, or before it, still wait ${describeWait(old)}; new entries wait ${describeWait(now)}`,
    });
  }
  const branchFields = differingFields(old.type === 'branch' ? { ...old, since: renames.get(old.since) ?? old.since } : old, now, [
    'since',
    'signal',
    'timeoutDays',
  ]);
  if (branchFields.length > 0) {
    changes.push({
      kind: 'branch-changed',
      stepId: old.id,
      detail: `branch "${old.id}": ${branchFields.join(', ')}`,
      effect: `${KEEP_OLD} branch; ${NEW_GET_NEW}`,
    });
  }
  const routes = (step: JourneyStep, rename = (id: string) => id): string =>
    stepLinks(step)
      .map((link) => `${link.field} "${rename(link.target)}"`)
      .join(', ');
  if (routes(old, (id) => renames.get(id) ?? id) !== routes(now)) {
    changes.push({
      kind: 'route-changed',
      stepId: old.id,
      detail: `step "${old.id}": ${routes(old)} → ${routes(now)}`,
      effect: `${KEEP_OLD} route; ${NEW_GET_NEW}`,
    });
  }
  return changes;
}

function differingFields(old: JourneyStep, now: JourneyStep, fields: readonly string[]): string[] {
  const before = old as Record<string, unknown>;
  const after = now as Record<string, unknown>;
  return fields
    .filter((field) => before[field] !== after[field])
    .map((field) => `${field} ${JSON.stringify(before[field])} → ${JSON.stringify(after[field])}`);
}

/** Signals an execution on the old version waits for that ingest will no longer record after the deploy. */
function retiredSignals(before: Record<string, JourneyDefinition>, after: Record<string, JourneyDefinition>): JourneyChange[] {
  const recorded = new Set(journeySignalFilters(Object.values(after)).map((filter) => filter.id));
  const changes: JourneyChange[] = [];
  for (const tier of Object.keys(before).sort()) {
    const old = before[tier]!;
    if (!after[tier]) continue;
    const conversion = old.settings.exitOn.conversion;
    if (conversion && !recorded.has(conversionSignalFilter(conversion).id)) {
      changes.push({
        tier,
        journeyId: old.id,
        kind: 'signal-retired',
        detail: `the old conversion (${JSON.stringify(conversion)}) is no longer recorded`,
        effect: 'executions already running no longer exit when such a conversion happens: they may still send an offer to a user who bought',
      });
    }
    for (const step of old.steps) {
      if (step.type !== 'branch') continue;
      const filter = branchSignalFilter(old, step);
      if (filter && !recorded.has(filter.id)) {
        changes.push({
          tier,
          journeyId: old.id,
          kind: 'signal-retired',
          stepId: step.id,
          detail: `branch "${step.id}" waits for ${step.signal} of "${step.since}", which is no longer recorded`,
          effect: 'executions already running that reach this branch take its notEngaged arm, whatever the user does',
        });
      }
    }
  }
  return changes;
}

/** What a step does, regardless of its id: the key a rename keeps. */
function contentKey(step: JourneyStep): string {
  switch (step.type) {
    case 'content':
      return `content:${step.templateId}`;
    case 'invite':
      return `invite:${step.groupId}`;
    case 'offer':
      return `offer:${step.offerId}`;
    case 'wait':
      return `wait:${describeWait(step)}`;
    case 'branch':
      return `branch:${step.signal}:${step.since}:${step.timeoutDays}`;
    case 'exit':
      return 'exit';
    default:
      return assertNever(step, 'journey step');
  }
}

function describeStep(step: JourneyStep): string {
  switch (step.type) {
    case 'content':
      return `content ${step.templateId}`;
    case 'invite':
      return `invite to ${step.groupId}`;
    case 'offer':
      return `offer ${step.offerId}`;
    case 'wait':
      return `wait ${describeWait(step)}`;
    case 'branch':
      return `branch on ${step.signal} of "${step.since}"`;
    case 'exit':
      return 'exit';
    default:
      return assertNever(step, 'journey step');
  }
}

function describeWait(step: Extract<JourneyStep, { type: 'wait' }>): string {
  return step.untilLocalTime !== undefined ? `until ${step.untilLocalTime}` : describeDuration(step.days ?? 0, step.hours ?? 0);
}
