/**
 * The live log's times: local to the ruleset's zone with the offset shown, so that a quiet-hours deferral at
 * 21:05 in Shanghai reads as 21:05, not as 13:05 with no zone.
 */
import { describe, expect, it } from 'vitest';
import { activityTime, describeActivity } from '../../functions/cli/commands/dev.js';
import type { StackActivity } from '../../functions/local/local-stack.js';
import { formatLocalMinute } from '../../functions/core/local-time.js';

describe('formatLocalMinute', () => {
  it('shows the local date and time to the minute with the UTC offset', () => {
    expect(formatLocalMinute(new Date('2026-11-28T13:05:42Z'), 'Asia/Shanghai')).toBe('2026-11-28 21:05 +08:00');
    expect(formatLocalMinute('2026-11-28T18:30:00Z', 'Asia/Shanghai')).toBe('2026-11-29 02:30 +08:00');
    expect(formatLocalMinute('2026-11-28T13:05:00Z', 'UTC')).toBe('2026-11-28 13:05 +00:00');
    expect(formatLocalMinute('2026-11-28T13:05:00Z', 'Asia/Kolkata')).toBe('2026-11-28 18:35 +05:30');
  });

  it('follows daylight saving time, west of Greenwich too', () => {
    expect(formatLocalMinute('2026-07-01T12:00:00Z', 'America/New_York')).toBe('2026-07-01 08:00 -04:00');
    expect(formatLocalMinute('2026-12-01T12:00:00Z', 'America/New_York')).toBe('2026-12-01 07:00 -05:00');
  });
});

describe('the live log', () => {
  it('shows a deferral until the local time it waits for, with the zone', () => {
    const line = describeActivity(
      {
        kind: 'journey-step',
        at: '2026-11-28T13:05:00.000Z',
        task: {
          journeyId: 'visitor-welcome',
          journeyVersion: 'v1',
          tier: 'visitor',
          stepId: 'beginner_cases',
          settings: { holdoutPercent: 10, quietHours: { start: '21:00', end: '08:00', timezoneAttribute: 'timezone' } },
          step: { type: 'content', templateId: 'pm-beginner-case-studies', channel: 'official-account' },
          userId: 'user-00060',
          executionName: 'user-00060-visitor-1',
          startedAt: '2026-11-28T10:00:00.000Z',
        },
        result: { outcome: 'deferred', until: '2026-11-29T00:00:00.000Z', reason: 'quiet-hours' },
      },
      'Asia/Shanghai',
    );
    expect(line).toBe('user-00060  deferred beginner_cases until 2026-11-29 08:00 +08:00 (quiet-hours)');
  });

  it('shows a stopped roll-up of a heavy user, which the Lambdas log as a warning, and that it resumes', () => {
    const activity: StackActivity = { kind: 'roll-up-stopped', userId: 'bot-7', reason: 'ProvisionedThroughputExceededException' };
    expect(describeActivity(activity, 'UTC')).toBe(
      'bot-7  roll-up of sealed heavy days stopped (ProvisionedThroughputExceededException); the next window read resumes it',
    );
    expect(activityTime(activity)).toBeUndefined();
  });
});

describe('the live log is stamped with the decision time', () => {
  it('takes the time an action, a notice or a step was decided, not the time the line is printed', () => {
    const action = { kind: 'action', action: { at: '2026-11-28T13:05:00.000Z' } } as unknown as StackActivity;
    const notice = { kind: 'notice', notice: { at: '2026-11-28T01:00:00.000Z' } } as unknown as StackActivity;
    expect(activityTime(action)?.toISOString()).toBe('2026-11-28T13:05:00.000Z');
    expect(activityTime(notice)?.toISOString()).toBe('2026-11-28T01:00:00.000Z');
    expect(activityTime({ kind: 'dead-letter' } as unknown as StackActivity)).toBeUndefined();
  });
});
