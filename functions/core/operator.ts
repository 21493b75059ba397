/**
 * Operator actions on one user: lock a tier, hand it back to the rules, and erase the user.
 *
 * Lock and unlock are decisions like any other (decideAndSave and the outbox, so history, journey and notices go
 * the same way as for an event); this module only refuses what an operator cannot mean: an unknown user, an
 * unknown tier, a lock that ends in the past. Erasure deletes everything stored under the user's key, stops the
 * journeys the profile knows of, and tells the bus with a pseudonymous reference only.
 */
import { erasureOccurrence } from './analytics.js';
import { localDate, LOCAL_DATE } from './dates.js';
import { type Decision, isLockActive } from './decide.js';
import { assertNever } from './errors.js';
import { userRef } from './hash.js';
import { type TierServices, setTierLock, stopAndCount, windowStart } from './ingest.js';
import type { TierLock } from './state.js';

export class OperatorError extends Error {
  override readonly name = 'OperatorError';
  constructor(
    message: string,
    readonly hint: string,
    options?: { cause?: unknown },
  ) {
    super(`Operator: ${message}`, options);
  }
}

/** Deletes every item stored under one user's key, whatever its kind, and says how many there were. */
export interface UserEraser {
  deleteUserItems(userId: string): Promise<{ deleted: number }>;
}

/** The bus notice of an erasure: nothing in it identifies the person, only the pseudonymous reference. */
export interface UserForgottenNotice {
  detailType: 'UserForgotten';
  userRef: string;
  at: string;
}

export interface ErasurePublisher {
  publishUserForgotten(notice: UserForgottenNotice): Promise<void>;
}

export interface OperatorServices extends TierServices {
  eraser: UserEraser;
  erasurePublisher: ErasurePublisher;
}

async function requireUser(services: TierServices, userId: string): Promise<void> {
  const { profile } = await services.store.loadUser(userId, windowStart(services.ruleset, services.clock.now()));
  if (!profile) throw new OperatorError(`no user "${userId}" is stored`, 'check the id; an operator acts only on users that exist');
}

export async function lockUser(services: TierServices, userId: string, lock: TierLock): Promise<Decision> {
  const { ruleset, clock } = services;
  if (!ruleset.tiers.some((tier) => tier.id === lock.tier)) {
    throw new OperatorError(`"${lock.tier}" is not a tier of ruleset ${ruleset.version}`, `use one of ${ruleset.tiers.map((t) => t.id).join(', ')}`);
  }
  if (lock.reason.trim() === '')
    throw new OperatorError('a lock needs a reason', 'say why, e.g. "VIP contract until March"; it is kept in the history');
  const until = lock.until;
  if (until !== undefined) {
    const today = localDate(clock.now(), ruleset.timezone);
    if (!LOCAL_DATE.test(until)) throw new OperatorError(`the lock's end date "${until}" is not a date`, 'write it as YYYY-MM-DD');
    if (!isLockActive(lock, today))
      throw new OperatorError(
        `the lock's end date ${until} is not after today (${today} in ${ruleset.timezone})`,
        'the lock ends at the start of that date; pick a later one',
      );
  }
  await requireUser(services, userId);
  return setTierLock(services, userId, lock);
}

export async function unlockUser(services: TierServices, userId: string): Promise<Decision> {
  await requireUser(services, userId);
  return setTierLock(services, userId, undefined);
}

export interface ForgetResult {
  userRef: string;
  deleted: number;
  stoppedExecutions: string[];
}

/**
 * Safe to repeat: a second run finds nothing to stop or delete, and publishes the notice again (consumers
 * receive the same reference, so repeating it is harmless). An event arriving later starts a new user.
 */
export async function forgetUser(services: OperatorServices, userId: string): Promise<ForgetResult> {
  const { profile } = await services.store.loadUser(userId, windowStart(services.ruleset, services.clock.now()));
  // The running journey, and any the outbox may have started or was about to stop.
  const executions = new Set<string>();
  if (profile?.journey) executions.add(profile.journey.executionName);
  for (const name of profile?.pendingJourney?.stopExecutionNames ?? []) executions.add(name);
  if (profile?.pendingJourney?.start) executions.add(profile.pendingJourney.start.executionName);
  // A stopped journey's steps happened: their tally is queued, under its id, as a tier change's flush queues it.
  for (const name of executions) await stopAndCount(services, name);
  // The census loses the user before their items go: a rerun after a crash finds the profile and the same id again.
  const erasure = profile && services.counters ? erasureOccurrence(services.ruleset, profile, services.clock.now()) : undefined;
  if (erasure) await services.counters?.addOnce(erasure);
  // Journeys first: a step that runs between the two sees no profile and exits as unknown-user anyway.
  const { deleted } = await services.eraser.deleteUserItems(userId);
  if (erasure) services.counters?.settle(erasure);
  const reference = userRef(userId);
  await services.erasurePublisher.publishUserForgotten({ detailType: 'UserForgotten', userRef: reference, at: services.clock.now().toISOString() });
  return { userRef: reference, deleted, stoppedExecutions: [...executions] };
}

// ---- One request, as the CLI sends it to a running stack or runs it against a table itself ---------------------

export type OperatorRequest =
  | { action: 'lock'; userId: string; lock: TierLock }
  | { action: 'unlock'; userId: string }
  | { action: 'forget'; userId: string };

export type OperatorOutcome =
  | { action: 'lock' | 'unlock'; userId: string; tier: string; transitions: string[] }
  | ({ action: 'forget' } & ForgetResult);

const text = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** Checks a request that crossed a process boundary; a bad one is an OperatorError naming the field. */
export function parseOperatorRequest(body: unknown): OperatorRequest {
  const fail = (problem: string): never => {
    throw new OperatorError(
      `the request ${problem}`,
      'send {"action": "lock" | "unlock" | "forget", "userId", and for lock "lock": {"tier", "reason", "until"?}}',
    );
  };
  if (body === null || typeof body !== 'object') return fail('is not a JSON object');
  const { action, userId, lock } = body as Record<string, unknown>;
  if (!text(userId)) return fail('has no "userId"');
  switch (action) {
    case 'unlock':
    case 'forget':
      return { action, userId };
    case 'lock': {
      if (lock === null || typeof lock !== 'object') return fail('has no "lock" object');
      const { tier, reason, until } = lock as Record<string, unknown>;
      if (!text(tier) || typeof reason !== 'string') return fail('has no "lock.tier" or "lock.reason"');
      if (until !== undefined && !text(until)) return fail('has a "lock.until" that is not a date');
      return { action, userId, lock: { tier, reason, ...(until !== undefined ? { until } : {}) } };
    }
    default:
      return fail(`has an unknown "action" ${JSON.stringify(action)}`);
  }
}

export async function performOperatorRequest(services: OperatorServices, request: OperatorRequest): Promise<OperatorOutcome> {
  switch (request.action) {
    case 'lock':
    case 'unlock': {
      const decision =
        request.action === 'lock' ? await lockUser(services, request.userId, request.lock) : await unlockUser(services, request.userId);
      return { action: request.action, userId: request.userId, tier: decision.profile.tier, transitions: decision.transitions.map((t) => t.kind) };
    }
    case 'forget':
      return { action: 'forget', ...(await forgetUser(services, request.userId)) };
    default:
      return assertNever(request, 'operator request');
  }
}
