/**
 * The tier store and the journey-step store in memory, for the replay engine. It keeps the contract of the
 * DynamoDB store (functions/aws/dynamo-store.ts) that the core relies on:
 * - an event key guards its day bucket, so a second delivery changes nothing and reports `duplicate`; a day past
 *   DEFAULT_LIGHT_DAY_EVENTS turns heavy, and from then on its keys are guarded per user whatever the day, with
 *   signals coarsened to the hour, as the DynamoDB store's SEEN# guards do; the window read shows light days' keys
 *   and heavy days, and settleCopy decides a resend with another date on the key's guard, as the DynamoDB store does;
 * - the profile is written whole under a version condition (and its outboxClears count), and the outbox is cleared
 *   only if neither its version nor the review date moved meanwhile; history is listed along its committed chain;
 * - a send is counted once per send id in its day's bucket;
 * - the review index is the profile's review date (or outbox retry date), as `reviewIndexDate` defines it.
 *
 * Stored objects are handed out without copying: the core builds new profiles rather than editing loaded ones,
 * and the differential test against the full stack would catch a core change that broke that.
 */
import { DEFAULT_LIGHT_DAY_EVENTS, type DayIncrement, HEAVY_DAY_SIGNAL_SECONDS, coarsenSignal } from '../core/metrics.js';
import type { JourneyStepStore } from '../core/journey/run-journey-step.js';
import type { TierStore, WindowCopies } from '../core/ports.js';
import { reviewShard } from '../core/review.js';
import { reviewIndexDate } from '../core/review-date.js';
import { type DayBucket, type HistoryEntry, type UserProfile, committedHistory, withoutOutbox } from '../core/state.js';

/** One day as the store keeps it: what `strata import` writes as the user's day item (and guards, when heavy). */
export interface StoredDay extends DayBucket {
  eventKeys: Set<string>;
  /** Past DEFAULT_LIGHT_DAY_EVENTS: the day's keys live in the user's guards instead. */
  heavy?: boolean;
  sendIds?: Set<string>;
}

export interface StoredUser {
  profile?: UserProfile;
  /** By local date; kept sorted on read. */
  days: Map<string, StoredDay>;
  /** Event key → the date it counts on, for the keys of heavy days and of resends settled across days. */
  guards: Map<string, string>;
  /** Keys whose guard a resend with another date settled: it no longer changes (see settleCopy). */
  settled: Set<string>;
  history: HistoryEntry[];
}

/**
 * What the window read hands out for a day, made again only after the day changes: every event and journey step
 * reads the user's whole window, and rebuilding each day's bucket and key list every time was most of its cost.
 */
interface DayViews {
  bucket?: DayBucket;
  /**
   * The light day's event keys, in the set's order. A new key is appended rather than the list made again (a busy
   * day's list was copied on every one of its events); like a bucket's counters, a list handed out may grow later.
   */
  keys?: string[];
}

/** A day as this store makes it: with its views, read on every window read (a field, not a lookup by day). */
interface KeptDay extends StoredDay {
  views: DayViews;
}

function viewsOf(day: StoredDay): DayViews {
  return (day as KeptDay).views;
}

export class MemoryReplayStore implements TierStore, JourneyStepStore {
  private readonly users = new Map<string, StoredUser>();
  /** Each user's days in date order, made on the first window read and kept in order as days are added. */
  private readonly sortedDays = new WeakMap<StoredUser, StoredDay[]>();
  /** Every key each user's light days have held, for knowsEventKey (asked of most events) to look up at once. */
  private readonly keysEverListed = new WeakMap<StoredUser, Set<string>>();
  /**
   * Each user's latest window copies and the date that window started on, until a light day's list of keys changes
   * other than by a key appended to a listed day: every fresh event reads them, most often from the same date.
   */
  private readonly listedCopies = new WeakMap<StoredUser, { fromDate: string; copies: WindowCopies }>();
  private checkpoint: string | undefined;
  private shardCountSeen: number;
  /** Review dates set by deferReview, which a profile write replaces (as the DynamoDB item's index key is). */
  private readonly deferredReviews = new Map<string, string>();

  /**
   * `keepHistory: false` for a replay that reads no tier history (the core never reads it while it ingests, reviews
   * or runs a journey step; only listHistory does): entries are then not kept, and listHistory refuses to answer.
   */
  constructor(
    private readonly shardCount: number,
    private readonly options: { keepHistory?: boolean } = {},
  ) {
    this.shardCountSeen = shardCount;
  }

  /** Forgets a user whose replay is over, so that memory holds only the users still being replayed. */
  forget(userId: string): void {
    this.users.delete(userId);
    this.deferredReviews.delete(userId);
  }

  /** Whether the review index lists the user under `date`. */
  isDueForReview(userId: string, date: string): boolean {
    const profile = this.users.get(userId)?.profile;
    if (!profile) return false;
    return (this.deferredReviews.get(userId) ?? reviewIndexDate(profile)) === date;
  }

  /** Everything stored for the user, as is (read-only by contract), for `strata import` to write to DynamoDB. */
  storedUser(userId: string): Readonly<StoredUser> | undefined {
    return this.users.get(userId);
  }

  profileOf(userId: string): UserProfile | undefined {
    return this.users.get(userId)?.profile;
  }

  /** A counter's value on one of the user's days (0 when the day has none). */
  counterOn(userId: string, date: string, counter: string): number {
    return this.users.get(userId)?.days.get(date)?.counters[counter] ?? 0;
  }

  /**
   * Whether any of the user's days or guards already holds the event key. Only an event never seen before can skip
   * its decision: a copy of a known one may be a resend on another day, which ingest settles (settleCopy).
   */
  knowsEventKey(userId: string, eventKey: string): boolean {
    const user = this.users.get(userId);
    if (!user) return false;
    // A key leaves a day's list only with a guard set for it (the day turned heavy, or settleCopy took the copy out),
    // so the keys ever put on a light day and the guards are together what the days and guards hold now.
    return user.guards.has(eventKey) || (this.keysEverListed.get(user)?.has(eventKey) ?? false);
  }

  private user(userId: string): StoredUser {
    let user = this.users.get(userId);
    if (!user) {
      user = { days: new Map(), guards: new Map(), settled: new Set(), history: [] };
      this.users.set(userId, user);
    }
    return user;
  }

  private day(userId: string, date: string): StoredDay {
    const days = this.user(userId).days;
    let day = days.get(date);
    if (!day) {
      const kept: KeptDay = { date, counters: {}, eventKeys: new Set(), views: {} };
      day = kept;
      days.set(date, day);
      // Into the days' order where it is kept (a new day is most often the latest), rather than sorted again.
      const sorted = this.sortedDays.get(this.user(userId));
      if (sorted) {
        let at = sorted.length;
        while (at > 0 && sorted[at - 1]!.date > date) at--;
        sorted.splice(at, 0, day);
      }
    }
    return day;
  }

  /** The day's bucket changed: the window read makes it again. */
  private changed(day: StoredDay): void {
    viewsOf(day).bucket = undefined;
  }

  /** A key left the day's list (a resend taken back out, or the day turned heavy): the window read lists them again. */
  private keysRemoved(userId: string, day: StoredDay): void {
    viewsOf(day).keys = undefined;
    this.listedCopies.delete(this.user(userId));
  }

  private daysInOrder(user: StoredUser): StoredDay[] {
    let sorted = this.sortedDays.get(user);
    if (!sorted) {
      sorted = [...user.days.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
      this.sortedDays.set(user, sorted);
    }
    return sorted;
  }

  async recordEvent(userId: string, eventKey: string, increment: DayIncrement): Promise<{ duplicate: boolean; appliedOn?: string }> {
    const day = this.day(userId, increment.date);
    if (!day.heavy) {
      if (day.eventKeys.has(eventKey)) return { duplicate: true };
      this.changed(day);
      if (day.eventKeys.size < DEFAULT_LIGHT_DAY_EVENTS) {
        // A day's first key puts the day in the window's copies; a later one is appended to its listed keys.
        const user = this.user(userId);
        if (day.eventKeys.size === 0) this.listedCopies.delete(user);
        day.eventKeys.add(eventKey);
        let everListed = this.keysEverListed.get(user);
        if (!everListed) {
          everListed = new Set();
          this.keysEverListed.set(user, everListed);
        }
        everListed.add(eventKey);
        viewsOf(day).keys?.push(eventKey);
        this.addToDay(day, increment.counters, increment.signals);
        return { duplicate: false };
      }
      // Full: the day turns heavy, and its keys become the user's guards.
      const guards = this.user(userId).guards;
      for (const key of day.eventKeys) if (!guards.has(key)) guards.set(key, increment.date);
      day.eventKeys.clear();
      this.keysRemoved(userId, day);
      day.heavy = true;
    }
    const guards = this.user(userId).guards;
    const appliedOn = guards.get(eventKey);
    if (appliedOn !== undefined) return { duplicate: true, appliedOn };
    guards.set(eventKey, increment.date);
    this.changed(day);
    this.addToDay(
      day,
      increment.counters,
      increment.signals.map((signal) => coarsenSignal(signal, HEAVY_DAY_SIGNAL_SECONDS)),
    );
    return { duplicate: false };
  }

  /** As the DynamoDB store's settleCopy: the first claim on the key's guard wins, and a losing copy goes back out. */
  async settleCopy(userId: string, eventKey: string, increment: DayIncrement, copy: { on: 'light' | 'heavy'; claim: string }): Promise<string> {
    const user = this.user(userId);
    const named = user.guards.get(eventKey);
    // Only heavy days nearby and no guard: nothing to settle (a later heavy copy yields to this one).
    if (named === undefined && copy.on === 'light' && copy.claim === increment.date) return increment.date;
    const repoint = copy.on === 'heavy' && named === increment.date && copy.claim !== increment.date && !user.settled.has(eventKey);
    const countsOn = named === undefined || repoint ? copy.claim : named;
    user.guards.set(eventKey, countsOn);
    user.settled.add(eventKey);
    if (countsOn === increment.date) return countsOn;
    const day = this.day(userId, increment.date);
    this.changed(day);
    const present = copy.on === 'light' ? day.eventKeys.delete(eventKey) : named === increment.date;
    if (copy.on === 'light') this.keysRemoved(userId, day);
    if (present) {
      const negated = Object.fromEntries(Object.entries(increment.counters).map(([counter, amount]) => [counter, -amount + 0]));
      this.addToDay(day, negated, []);
    }
    return countsOn;
  }

  private addToDay(day: StoredDay, counters: DayIncrement['counters'], signals: readonly string[]): void {
    for (const counter in counters) day.counters[counter] = (day.counters[counter] ?? 0) + counters[counter]!;
    if (signals.length > 0) day.signals = [...new Set([...(day.signals ?? []), ...signals])];
  }

  /** The light day's keys as the window read lists them: made again only after a key left the day. */
  lightKeysOf(day: StoredDay): string[] {
    const views = viewsOf(day);
    views.keys ??= [...day.eventKeys];
    return views.keys;
  }

  private window(
    userId: string,
    fromDate: string,
    withCopies: boolean,
  ): { profile: UserProfile | undefined; buckets: DayBucket[]; copies: WindowCopies } {
    const user = this.users.get(userId);
    if (!user) return { profile: undefined, buckets: [], copies: NO_COPIES };
    const buckets: DayBucket[] = [];
    const days: StoredDay[] = [];
    for (const day of this.daysInOrder(user)) {
      if (day.date < fromDate) continue;
      const views = viewsOf(day);
      if (withCopies) days.push(day);
      if (!views.bucket) {
        const bucket: DayBucket = { date: day.date, counters: day.counters };
        if (day.signals) bucket.signals = day.signals;
        if (day.sends !== undefined) bucket.sends = day.sends;
        views.bucket = bucket;
      }
      buckets.push(views.bucket);
    }
    if (!withCopies) return { profile: user.profile, buckets, copies: NO_COPIES };
    const listed = this.listedCopies.get(user);
    if (listed?.fromDate === fromDate) return { profile: user.profile, buckets, copies: listed.copies };
    const copies = new ListedOnRead(this, days);
    this.listedCopies.set(user, { fromDate, copies });
    return { profile: user.profile, buckets, copies };
  }

  async loadUser(userId: string, fromDate: string): Promise<{ profile?: UserProfile; buckets: DayBucket[]; copies: WindowCopies }> {
    const { profile, buckets, copies } = this.window(userId, fromDate, true);
    return profile ? { profile, buckets, copies } : { buckets, copies };
  }

  async loadUserForJourney(userId: string, sinceDate: string): Promise<{ profile: UserProfile | undefined; buckets: DayBucket[] }> {
    const { profile, buckets } = this.window(userId, sinceDate, false);
    return { profile, buckets };
  }

  async saveProfile(profile: UserProfile, expectedVersion: number): Promise<boolean> {
    const user = this.user(profile.userId);
    if ((user.profile?.version ?? 0) !== expectedVersion || user.profile?.outboxClears !== profile.outboxClears) return false;
    user.profile = { ...profile, version: expectedVersion + 1 };
    this.deferredReviews.delete(profile.userId);
    return true;
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    if (this.options.keepHistory === false) return;
    const user = this.user(entry.userId);
    const last = user.history[user.history.length - 1];
    // The usual case, a version newer than any kept: nothing to replace, and the list stays in version order.
    if (last === undefined || last.version < entry.version) user.history.push(entry);
    else
      user.history = [...user.history.filter((e) => e.version !== entry.version || e.id !== entry.id), entry].sort((a, b) => a.version - b.version);
  }

  async clearOutbox(profile: UserProfile): Promise<boolean> {
    const user = this.users.get(profile.userId);
    const stored = user?.profile;
    if (!user || !stored || profile.outboxVersion === undefined) return false;
    if (stored.outboxVersion !== profile.outboxVersion || stored.reviewAt !== profile.reviewAt) return false;
    const cleared = withoutOutbox(stored);
    user.profile = { ...cleared, outboxClears: (stored.outboxClears ?? 0) + 1 };
    this.deferredReviews.delete(profile.userId);
    return true;
  }

  async listDueForReview(date: string, shard: number): Promise<{ userIds: string[] }> {
    const userIds: string[] = [];
    for (const userId of this.users.keys()) {
      if (this.isDueForReview(userId, date) && reviewShard(userId, this.shardCount) === shard) userIds.push(userId);
    }
    return { userIds: userIds.sort() };
  }

  async getReviewCheckpoint(): Promise<string | undefined> {
    return this.checkpoint;
  }

  async setReviewCheckpoint(date: string): Promise<void> {
    if (this.checkpoint === undefined || date > this.checkpoint) this.checkpoint = date;
  }

  async deferReview(userId: string, date: string): Promise<void> {
    if (this.users.get(userId)?.profile) this.deferredReviews.set(userId, date);
  }

  async widenReviewShardCount(current: number): Promise<number> {
    this.shardCountSeen = Math.max(this.shardCountSeen, current);
    return this.shardCountSeen;
  }

  async listHistory(userId: string, limit: number): Promise<HistoryEntry[]> {
    if (this.options.keepHistory === false) throw new Error('MemoryReplayStore: this replay keeps no tier history (keepHistory: false)');
    const user = this.users.get(userId);
    return committedHistory([...(user?.history ?? [])].reverse(), user?.profile?.lastHistoryId, limit);
  }

  async recordSend(userId: string, date: string, sendId: string): Promise<boolean> {
    const day = this.day(userId, date);
    day.sendIds ??= new Set();
    if (day.sendIds.has(sendId)) return false;
    day.sendIds.add(sendId);
    day.sends = (day.sends ?? 0) + 1;
    this.changed(day);
    return true;
  }
}

const NO_COPIES: WindowCopies = { lightKeys: {}, heavyDates: [] };

/**
 * The window's copies (light days' keys, heavy days' dates), listed only when read: only a fresh event's decision
 * settles its copy against them, while reviews and journey steps read the window too. A class rather than an object
 * of getters, since every window read makes one.
 */
class ListedOnRead implements WindowCopies {
  private listed: { lightKeys: Record<string, string[]>; heavyDates: string[] } | undefined;

  constructor(
    private readonly store: MemoryReplayStore,
    private readonly days: readonly StoredDay[],
  ) {}

  private list(): { lightKeys: Record<string, string[]>; heavyDates: string[] } {
    if (this.listed) return this.listed;
    const lightKeys: Record<string, string[]> = {};
    const heavyDates: string[] = [];
    for (const day of this.days) {
      if (day.heavy) heavyDates.push(day.date);
      else if (day.eventKeys.size > 0) lightKeys[day.date] = this.store.lightKeysOf(day);
    }
    this.listed = { lightKeys, heavyDates };
    return this.listed;
  }

  get lightKeys(): Readonly<Record<string, readonly string[]>> {
    return this.list().lightKeys;
  }

  get heavyDates(): readonly string[] {
    return this.list().heavyDates;
  }
}
