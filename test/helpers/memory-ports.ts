/**
 * In-memory ports for unit tests of the core services (no I/O). They keep the contract of the real adapters
 * (event-key guard, version condition, sparse review index, conditional outbox clear) in the simplest form;
 * the adapter tests prove the DynamoDB store keeps the same contract on dynalite.
 */
import type { DayIncrement } from '../../functions/core/metrics.js';
import type { Clock, JourneyStarter, NoticePublisher, TierStore, WindowCopies } from '../../functions/core/ports.js';
import { reviewShard } from '../../functions/core/review.js';
import { reviewIndexDate } from '../../functions/core/review-date.js';
import {
  type DayBucket,
  type HistoryEntry,
  type JourneyRef,
  type TierNotice,
  type UserProfile,
  committedHistory,
} from '../../functions/core/state.js';

const clone = <T>(value: T): T => structuredClone(value);

export class MemoryTierStore implements TierStore {
  readonly days = new Map<string, Map<string, DayBucket & { keys: Set<string> }>>();
  readonly profiles = new Map<string, UserProfile>();
  readonly history = new Map<string, HistoryEntry[]>();
  checkpoint: string | undefined;
  reviewShardCount: number | undefined;
  /** Users listed under a date by deferReview, until their next profile write lists them by their profile again. */
  readonly deferred = new Map<string, string>();

  constructor(readonly shardCount = 4) {}

  async recordEvent(userId: string, eventKey: string, increment: DayIncrement): Promise<{ duplicate: boolean }> {
    const days = this.days.get(userId) ?? new Map();
    this.days.set(userId, days);
    const bucket = days.get(increment.date) ?? { date: increment.date, counters: {}, signals: [], keys: new Set<string>() };
    days.set(increment.date, bucket);
    if (bucket.keys.has(eventKey)) return { duplicate: true };
    bucket.keys.add(eventKey);
    for (const [counter, amount] of Object.entries(increment.counters)) bucket.counters[counter] = (bucket.counters[counter] ?? 0) + amount;
    bucket.signals = [...new Set([...(bucket.signals ?? []), ...increment.signals])].sort();
    return { duplicate: false };
  }

  async loadUser(userId: string, fromDate: string): Promise<{ profile?: UserProfile; buckets: DayBucket[]; copies: WindowCopies }> {
    const days = [...(this.days.get(userId)?.values() ?? [])].filter((b) => b.date >= fromDate).sort((a, b) => (a.date < b.date ? -1 : 1));
    const buckets = days.map(({ keys: _keys, ...bucket }) => clone(bucket));
    // Every day is light here: all its keys are in the bucket.
    const copies: WindowCopies = { lightKeys: Object.fromEntries(days.map((day) => [day.date, [...day.keys]])), heavyDates: [] };
    const profile = this.profiles.get(userId);
    return profile ? { profile: clone(profile), buckets, copies } : { buckets, copies };
  }

  /** Resends with another date settled on one guard per key: the first claim wins, a losing copy goes back out. */
  readonly guards = new Map<string, string>();
  async settleCopy(userId: string, eventKey: string, increment: DayIncrement, copy: { claim: string }): Promise<string> {
    const guardKey = `${userId}|${eventKey}`;
    const countsOn = this.guards.get(guardKey) ?? copy.claim;
    this.guards.set(guardKey, countsOn);
    const bucket = this.days.get(userId)?.get(increment.date);
    if (countsOn !== increment.date && bucket?.keys.delete(eventKey)) {
      for (const [counter, amount] of Object.entries(increment.counters)) bucket.counters[counter] = (bucket.counters[counter] ?? 0) - amount;
    }
    return countsOn;
  }

  async saveProfile(profile: UserProfile, expectedVersion: number): Promise<boolean> {
    const stored = this.profiles.get(profile.userId);
    if ((stored?.version ?? 0) !== expectedVersion || stored?.outboxClears !== profile.outboxClears) return false;
    this.profiles.set(profile.userId, clone({ ...profile, version: expectedVersion + 1 }));
    this.deferred.delete(profile.userId);
    return true;
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    const list = (this.history.get(entry.userId) ?? []).filter((e) => e.version !== entry.version || e.id !== entry.id);
    this.history.set(
      entry.userId,
      [...list, clone(entry)].sort((a, b) => a.version - b.version),
    );
  }

  async clearOutbox(profile: UserProfile): Promise<boolean> {
    const stored = this.profiles.get(profile.userId);
    if (!stored || stored.outboxVersion !== profile.outboxVersion || stored.reviewAt !== profile.reviewAt) return false;
    delete stored.pendingJourney;
    delete stored.pendingNotices;
    delete stored.pendingHistory;
    delete stored.outboxVersion;
    delete stored.outboxRetryAt;
    this.deferred.delete(profile.userId);
    delete stored.outboxLease;
    stored.outboxClears = (stored.outboxClears ?? 0) + 1;
    return true;
  }

  async listDueForReview(date: string, shard: number): Promise<{ userIds: string[] }> {
    const userIds = [...this.profiles.values()]
      .filter((p) => (this.deferred.get(p.userId) ?? reviewIndexDate(p)) === date && reviewShard(p.userId, this.shardCount) === shard)
      .map((p) => p.userId)
      .sort();
    return { userIds };
  }

  async getReviewCheckpoint(): Promise<string | undefined> {
    return this.checkpoint;
  }

  async setReviewCheckpoint(date: string): Promise<void> {
    if (!this.checkpoint || date > this.checkpoint) this.checkpoint = date;
  }

  async deferReview(userId: string, date: string): Promise<void> {
    if (this.profiles.has(userId)) this.deferred.set(userId, date);
  }

  async widenReviewShardCount(current: number): Promise<number> {
    this.reviewShardCount = Math.max(this.reviewShardCount ?? 0, current);
    return this.reviewShardCount;
  }

  async listHistory(userId: string, limit: number): Promise<HistoryEntry[]> {
    return committedHistory([...(this.history.get(userId) ?? [])].reverse(), this.profiles.get(userId)?.lastHistoryId, limit);
  }
}

export class RecordingJourneyStarter implements JourneyStarter {
  readonly started = new Map<string, JourneyRef>();
  readonly stopped: string[] = [];
  async start(journey: JourneyRef): Promise<'started' | 'already-exists'> {
    if (this.started.has(journey.executionName)) return 'already-exists';
    this.started.set(journey.executionName, journey);
    return 'started';
  }
  async stop(executionName: string): Promise<void> {
    if (!this.stopped.includes(executionName)) this.stopped.push(executionName);
  }
}

export class RecordingPublisher implements NoticePublisher {
  readonly notices = new Map<string, TierNotice>();
  async publishNotices(notices: TierNotice[]): Promise<void> {
    for (const notice of notices) this.notices.set(notice.noticeId, notice);
  }
}

export class ManualClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current);
  }
  set(instant: string | Date): void {
    this.current = new Date(instant);
  }
}
