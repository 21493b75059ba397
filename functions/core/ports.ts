/**
 * The ports through which the core services reach storage, Step Functions and the event bus. Adapters live in
 * functions/aws (DynamoDB, SFN, EventBridge) and functions/local (in-process stand-ins); the services in
 * ingest.ts and review.ts are the same code in Lambda, in `strata dev` and in `strata simulate`.
 */
import type { DayIncrement } from './metrics.js';
import type { DayBucket, HistoryEntry, JourneyRef, TierNotice, UserProfile } from './state.js';

export type { HistoryEntry, TierNotice };

export interface TierStore {
  /**
   * Adds an event's increments to its day bucket, guarded by the event key: a second delivery changes nothing
   * and reports `duplicate`, with `appliedOn` the date the event counts on when the store knows it (a copy with
   * another date is then a producer resend, not a redelivery).
   */
  recordEvent(userId: string, eventKey: string, increment: DayIncrement): Promise<{ duplicate: boolean; appliedOn?: string }>;
  /**
   * The profile (if any) and the buckets dated from `fromDate` on, read together, with what the same read shows of
   * the duplicate guard (`copies`), when the store keeps it in the day buckets.
   */
  loadUser(userId: string, fromDate: string): Promise<{ profile?: UserProfile; buckets: DayBucket[]; copies?: WindowCopies }>;
  /**
   * Called by ingest after recordEvent applied a copy on `increment.date` (`on` says whether that day was light or
   * heavy) and the window read showed the same key on another day, or heavy days near it: a producer resend with
   * another date. The store settles which copy counts (the first to claim `claim`, the date proposed by the caller,
   * wins, whoever asks) and takes this copy back out if it lost. Resolves the date the event counts on.
   */
  settleCopy(userId: string, eventKey: string, increment: DayIncrement, copy: { on: 'light' | 'heavy'; claim: string }): Promise<string>;
  /**
   * Writes the whole profile, as version expectedVersion + 1, only if its stored version is still
   * `expectedVersion` (0 = must not exist yet) and its outboxClears is still `profile.outboxClears`. Resolves false on
   * a conflict so that the caller re-reads and re-decides. Maintains the review index from `profile.reviewAt`.
   */
  saveProfile(profile: UserProfile, expectedVersion: number): Promise<boolean>;
  /**
   * Stores a history entry under its version and id, before the profile write that commits it; writing the same
   * entry twice leaves one, and entries of other ids at the same version stay apart.
   */
  appendHistory(entry: HistoryEntry): Promise<void>;
  /**
   * Empties the outbox (and its lease) once its work is done, unless a newer decision has added to it meanwhile
   * (the stored outboxVersion or reviewAt differs), and lists the user in the review index under `profile.reviewAt`
   * again. Resolves true if it emptied the outbox, false if a newer decision was there first. It counts up
   * `outboxClears`, and saveProfile refuses a profile whose `outboxClears` is not the stored one, so that a writer
   * that read the outbox before the clear cannot write it back.
   */
  clearOutbox(profile: UserProfile): Promise<boolean>;
  /** One page of the users whose review date is `date`, in one shard of the review index. */
  listDueForReview(date: string, shard: number, cursor?: string): Promise<{ userIds: string[]; cursor?: string }>;
  /** The last review date completed, so that a missed night is caught up. */
  getReviewCheckpoint(): Promise<string | undefined>;
  setReviewCheckpoint(date: string): Promise<void>;
  /**
   * Lists the user in the review index under `date`, whatever their profile holds, so that a user whose review
   * failed (a profile that cannot be read or decided) is tried again that night rather than left behind.
   */
  deferReview(userId: string, date: string): Promise<void>;
  /**
   * Records `current` as the review's shard count unless a larger one is stored, and resolves the larger: profiles
   * written under a higher count stay in those shards until they are reviewed, so lowering the count must not hide
   * them.
   */
  widenReviewShardCount(current: number): Promise<number>;
  /** The committed entries, newest first (see committedHistory in state.ts). */
  listHistory(userId: string, limit: number): Promise<HistoryEntry[]>;
}

/**
 * What a window read shows of the duplicate guard: the event keys held by its light days (by date), and its heavy
 * days, whose keys are guarded per user whatever the day. Ingest uses it to find a producer resend with another date.
 */
export interface WindowCopies {
  lightKeys: Readonly<Record<string, readonly string[]>>;
  heavyDates: readonly string[];
}

export interface JourneyStarter {
  /** Starts the tier's journey under a deterministic name; an existing execution of that name counts as done. */
  start(journey: JourneyRef, userId: string): Promise<'started' | 'already-exists'>;
  /**
   * Stops a running execution (its tier is the name's prefix); an unknown or finished one counts as done. Resolves
   * the execution data where it was stopped when it has been stopped (now, or by an earlier call), so that its
   * tally can be queued (core/analytics.ts executionTally); nothing when it ended on its own, is
   * unknown, or the starter cannot tell.
   */
  stop(executionName: string): Promise<StoppedExecution | undefined> | Promise<void>;
}

/** An execution stopped by StopExecution, as its step results were when it stopped. */
export interface StoppedExecution {
  tier: string;
  startedAt: string;
  /** The execution data (`$`): `results` holds the outcome of each step that had run. */
  data: unknown;
}

export interface NoticePublisher {
  publishNotices(notices: TierNotice[]): Promise<void>;
}

export interface Clock {
  now(): Date;
}
