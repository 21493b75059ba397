/**
 * Operator actions on the embedded stack: dynalite as the store, the compiled journeys on the local runner, the
 * local bus for notices. Lock, unlock (by hand and by the nightly review when the lock ends) and forget, including
 * forget while the user's journey is running.
 */
import { QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { userKey } from '../../functions/aws/table-schema.js';
import { loadValidRuleset } from '../../functions/cli/commands/simulate.js';
import { addDays, localDate } from '../../functions/core/dates.js';
import { userRef } from '../../functions/core/hash.js';
import { instantAtLocalTime } from '../../functions/core/local-time.js';
import { isHeldOut } from '../../functions/core/journey/decide-journey-step.js';
import { OperatorError, forgetUser, lockUser, unlockUser } from '../../functions/core/operator.js';
import type { Ruleset } from '../../functions/core/ruleset.js';
import type { TierNotice } from '../../functions/core/state.js';
import { createVirtualClock, type VirtualClock } from '../../functions/local/clock.js';
import { type LocalStack, type StackActivity, startLocalStack } from '../../functions/local/local-stack.js';
import type { UserForgottenNotice } from '../../functions/core/operator.js';

const DAY0 = '2026-03-02';

let ruleset: Ruleset;
let clock: VirtualClock;
let stack: LocalStack;
let activity: StackActivity[];

const notices = (): TierNotice[] => activity.flatMap((a) => (a.kind === 'notice' ? [a.notice] : []));
const forgotten = (): UserForgottenNotice[] => activity.flatMap((a) => (a.kind === 'forgotten' ? [a.notice] : []));

async function sendEvent(userId: string, type: string, eventId: string, properties: Record<string, unknown> = {}): Promise<void> {
  const at = clock.now().toISOString();
  await stack.bus.put([
    {
      version: '0',
      id: eventId,
      'detail-type': type,
      source: 'test.app',
      account: '000000000000',
      time: at.replace(/\.\d{3}Z$/, 'Z'),
      region: 'local',
      resources: [],
      detail: { eventId, userId, type, occurredAt: at, properties },
    },
  ]);
  await stack.settle();
}

async function itemsOf(userId: string): Promise<number> {
  const page = await stack.dynalite.client.send(
    new QueryCommand({
      TableName: stack.dynalite.tableName,
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': { S: userKey(userId) } },
    }),
  );
  return page.Count ?? 0;
}

beforeEach(async () => {
  ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
  clock = createVirtualClock(instantAtLocalTime(DAY0, 10 * 60, ruleset.timezone));
  activity = [];
  stack = await startLocalStack({ ruleset, clock, batchWindowMs: 0, onActivity: (a) => void activity.push(a) });
  clock.settleWith(() => stack.settle());
  await stack.store.setReviewCheckpoint(addDays(DAY0, -1));
});
afterEach(async () => {
  await stack.close();
});

describe('strata lock / unlock on the local stack', () => {
  it('locks a visitor into core with a reason in the history, swaps the journey and publishes TierChanged locked', async () => {
    await sendEvent('vip-1', 'app.opened', 'e1');
    const visitorJourney = (await stack.store.loadUser('vip-1', DAY0)).profile!.journey!.executionName;

    await lockUser(stack.services, 'vip-1', { tier: 'core', until: addDays(DAY0, 90), reason: 'VIP contract' });
    await stack.settle();

    const { profile } = await stack.store.loadUser('vip-1', DAY0);
    expect(profile).toMatchObject({
      tier: 'core',
      lock: { tier: 'core', until: addDays(DAY0, 90), reason: 'VIP contract' },
      reviewAt: addDays(DAY0, 90),
    });
    const [latest] = await stack.store.listHistory('vip-1', 1);
    expect(latest!.explanation).toMatchObject({ trigger: 'operator', note: 'locked: VIP contract', fromTier: 'visitor', toTier: 'core' });
    expect(notices().at(-1)).toMatchObject({ detailType: 'TierChanged', kind: 'locked', fromTier: 'visitor', toTier: 'core' });
    const executions = stack.runner.executions();
    expect(executions.find((e) => e.executionName === visitorJourney)?.status).toBe('ABORTED');
    expect(executions.find((e) => e.executionName === profile!.journey!.executionName)?.status).toBe('RUNNING');
  });

  it('publishes TierChanged kinds locked and unlocked even when the tier stays, and unlock hands the user back to the rules', async () => {
    await sendEvent('keep-1', 'app.opened', 'e1');
    await lockUser(stack.services, 'keep-1', { tier: 'visitor', reason: 'support case' });
    await unlockUser(stack.services, 'keep-1');
    expect(notices().map((n) => [n.detailType, n.kind])).toEqual([
      ['TierChanged', 'entered'],
      ['TierChanged', 'locked'],
      ['TierChanged', 'unlocked'],
    ]);
    const history = await stack.store.listHistory('keep-1', 5);
    expect(history[0]!.explanation.note).toBe('unlocked by an operator');
    expect((await stack.store.loadUser('keep-1', DAY0)).profile!.lock).toBeUndefined();
  });

  it('ends the lock at the nightly review of its end date', async () => {
    await sendEvent('short-1', 'app.opened', 'e1');
    const until = addDays(DAY0, 2);
    await lockUser(stack.services, 'short-1', { tier: 'member', until, reason: 'two-day trial' });

    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 1), 60, ruleset.timezone));
    await stack.runNightlyReview();
    expect((await stack.store.loadUser('short-1', DAY0)).profile!.lock).toBeDefined();

    await clock.advanceTo(instantAtLocalTime(until, 60, ruleset.timezone));
    const review = await stack.runNightlyReview();
    await stack.settle();
    expect(review.usersChanged).toBe(1);
    const { profile } = await stack.store.loadUser('short-1', DAY0);
    expect(profile!.lock).toBeUndefined();
    expect(notices().filter((n) => n.kind === 'unlocked')).toHaveLength(1);
    const [latest] = await stack.store.listHistory('short-1', 1);
    expect(latest!.explanation.trigger).toBe('review');
    expect(latest!.explanation.transitions[0]!.kind).toBe('unlocked');
  });

  it('refuses an unknown user, an unknown tier and an end date in the past, storing nothing', async () => {
    await sendEvent('u-1', 'app.opened', 'e1');
    await expect(lockUser(stack.services, 'nobody', { tier: 'core', reason: 'x' })).rejects.toThrow(/no user "nobody"/);
    await expect(lockUser(stack.services, 'u-1', { tier: 'gold', reason: 'x' })).rejects.toThrow(OperatorError);
    await expect(lockUser(stack.services, 'u-1', { tier: 'core', until: localDate(clock.now(), ruleset.timezone), reason: 'x' })).rejects.toThrow(
      /not after today/,
    );
    await expect(unlockUser(stack.services, 'nobody')).rejects.toThrow(/no user/);
    expect(await itemsOf('nobody')).toBe(0);
    expect((await stack.store.loadUser('u-1', DAY0)).profile!.lock).toBeUndefined();
  });
});

describe('strata forget on the local stack', () => {
  it('during a running journey: stops it, deletes every item, publishes only the reference; repeatable; a later event is a new user', async () => {
    await sendEvent('gone-1', 'app.opened', 'e1');
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 1), 11 * 60, ruleset.timezone));
    await sendEvent('gone-1', 'content.completed', 'e2', { templateId: 'x' });
    const { profile } = await stack.store.loadUser('gone-1', DAY0);
    const execution = profile!.journey!.executionName;
    expect(stack.runner.executions().find((e) => e.executionName === execution)?.status).toBe('RUNNING');
    expect(await itemsOf('gone-1')).toBeGreaterThanOrEqual(4); // two days, the profile, history

    const result = await forgetUser(stack.operator, 'gone-1');
    await stack.settle();

    expect(result).toEqual({ userRef: userRef('gone-1'), deleted: expect.any(Number), stoppedExecutions: [execution] });
    expect(stack.runner.executions().find((e) => e.executionName === execution)?.status).toBe('ABORTED');
    expect(await itemsOf('gone-1')).toBe(0);
    expect(forgotten()).toEqual([{ detailType: 'UserForgotten', userRef: userRef('gone-1'), at: clock.now().toISOString() }]);
    expect(JSON.stringify(forgotten())).not.toContain('gone-1');

    // Time passes: nothing of the stopped journey sends, nothing is left for the review.
    const actionsBefore = activity.filter((a) => a.kind === 'action').length;
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 10), 60, ruleset.timezone));
    expect((await stack.runNightlyReview()).usersDue).toBe(0);
    expect(activity.filter((a) => a.kind === 'action').length).toBe(actionsBefore);

    expect(await forgetUser(stack.operator, 'gone-1')).toEqual({ userRef: userRef('gone-1'), deleted: 0, stoppedExecutions: [] });

    // The same event id again is not a duplicate any more: the user starts over.
    await sendEvent('gone-1', 'app.opened', 'e1');
    const reborn = (await stack.store.loadUser('gone-1', addDays(DAY0, 10))).profile!;
    expect(reborn.version).toBe(1);
    expect(
      notices()
        .filter((n) => n.userId === 'gone-1')
        .map((n) => n.kind),
    ).toEqual(['entered', 'entered']);
  });
});

describe('per-channel consent on the local stack', () => {
  it('stops only the channel named, everything with none, and resumes after an opt-in', async () => {
    const visitor = ruleset.journeys['visitor']!;
    const users = Array.from({ length: 40 }, (_, n) => `consent-${n}`)
      .filter((id) => !isHeldOut(id, visitor))
      .slice(0, 3);
    const [leftDirect, leftAll, cameBack] = users as [string, string, string];
    for (const userId of users) await sendEvent(userId, 'app.opened', `${userId}-open`);
    await sendEvent(leftDirect, 'message.opted_out', `${leftDirect}-out`, { channel: 'direct-message' });
    await sendEvent(leftAll, 'message.opted_out', `${leftAll}-out`);
    await sendEvent(cameBack, 'message.opted_out', `${cameBack}-out`, { channel: 'direct-message' });
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 1), 11 * 60, ruleset.timezone));
    await sendEvent(cameBack, 'message.opted_in', `${cameBack}-in`, { channel: 'direct-message' });
    await clock.advanceTo(instantAtLocalTime(addDays(DAY0, 12), 12 * 60, ruleset.timezone));

    const sentSteps = (userId: string): string[] =>
      activity.flatMap((a) => (a.kind === 'action' && a.action.userId === userId ? [a.action.stepId] : []));
    const exits = (userId: string): string[] =>
      activity.flatMap((a) =>
        a.kind === 'journey-step' && a.task.userId === userId && a.result.outcome === 'exit' ? [`${a.task.stepId}:${a.result.reason}`] : [],
      );
    // Official-account sends go on; the invite on direct-message is where the journey ends.
    expect(sentSteps(leftDirect)).toEqual(['beginner_cases', 'success_story']);
    expect(exits(leftDirect)).toEqual(['career_change_group:opted-out']);
    // Everything closed: the next step (the branch) ends the journey.
    expect(sentSteps(leftAll)).toEqual(['beginner_cases']);
    expect(exits(leftAll)).toEqual(['opened_cases:opted-out']);
    expect(sentSteps(cameBack)).toEqual(['beginner_cases', 'success_story', 'career_change_group', 'free_camp']);
    const { profile } = await stack.store.loadUser(leftDirect, DAY0);
    expect(profile!.consent).toEqual({ 'direct-message': { optedOut: true, at: expect.any(String) } });
    expect(profile!.optedOutAt).toBeUndefined();
  });
});
