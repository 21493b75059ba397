/**
 * The stored state of a user, as the core sees it. Adapters map these to DynamoDB items and back; the core
 * never sees keys, versions conditions or capacity.
 */
import type { Facts, RuleOutcome } from './facts.js';

/** One local day of a user's activity: counters keyed by counter id (see metrics.ts). */
export interface DayBucket {
  date: string;
  counters: Record<string, number>;
  /** Engagement and conversion signals of that day, `signalId@epochSeconds` (see signals in metrics.ts). */
  signals?: string[];
  /** Journey sends recorded that day, for frequency caps. */
  sends?: number;
}

export interface StoredAttribute {
  /** string | number | boolean for value attributes, string[] for tags, null for days-since. */
  value: string | number | boolean | string[] | null;
  /** occurredAt of the event that set it: the latest wins for values, the earliest for days-since. */
  at: string;
  eventId: string;
}

export interface TierLock {
  tier: string;
  /** Local date on which the lock ends; absent = until unlocked by hand. */
  until?: string;
  reason: string;
}

export interface JourneyRef {
  executionName: string;
  tier: string;
  startedAt: string;
}

/**
 * The outbox: written in the same profile update that changes the tier, cleared once StartExecution (and the
 * StopExecution of the previous runs) are done. Anything still here is retried by the next event or review.
 */
export interface PendingJourney {
  /** The new tier's journey; absent when that tier has none. */
  start?: JourneyRef;
  /** Executions to stop first: the previous journey, and a start that an unprocessed outbox may have made. */
  stopExecutionNames: string[];
}

/** A notice for the bus (TierChanged, GraceStarted, GraceCleared), kept in the profile until published. */
export interface TierNotice {
  /** Deterministic, so that a republished notice can be recognised downstream. */
  noticeId: string;
  detailType: 'TierChanged' | 'GraceStarted' | 'GraceCleared';
  userRef: string;
  userId: string;
  kind: string;
  fromTier?: string;
  toTier: string;
  graceUntil?: string;
  at: string;
  rulesetVersion: string;
}

/** One consent change: opted out or back in, as of the event's occurredAt. */
export interface ConsentChange {
  optedOut: boolean;
  at: string;
}

export type TierEntry = 'start' | 'promotion' | 'demotion' | 'lock';

export interface UserProfile {
  userId: string;
  tier: string;
  /** Instant of the last tier change. */
  tierSince: string;
  tierEnteredBy: TierEntry;
  /** Local date on which grace expires; present only while in grace. */
  graceUntil?: string;
  lock?: TierLock;
  /** Optimistic-locking version; 0 means the profile has never been stored. */
  version: number;
  /** Local date of the next review; absent = not in the review index. */
  reviewAt?: string;
  attributes: Record<string, StoredAttribute>;
  /** Instant of the opt-out from every channel, while it holds (see consent.ts). */
  optedOutAt?: string;
  /** The latest consent change per channel, `*` for all channels (see consent.ts). */
  consent?: Record<string, ConsentChange>;
  journey?: JourneyRef;
  /*
   * The outbox, written in the same conditional update as the decision it belongs to and emptied by
   * flushOutbox. A newer decision merges into it, so clearing is conditional on `outboxVersion`.
   */
  pendingJourney?: PendingJourney;
  pendingNotices?: TierNotice[];
  /** Only in profiles stored before history entries were written ahead of the profile; flushed like the rest. */
  pendingHistory?: HistoryEntry[];
  /**
   * How many times the outbox has been cleared. A clear does not move `version`, so this is what stops a writer that
   * read the outbox before a clear from writing it back: saveProfile also requires the stored count to be the one
   * the profile carries.
   */
  outboxClears?: number;
  /** The newest committed tier-history entry: the head of the chain that listHistory follows. */
  lastHistoryId?: string;
  /** The profile version that last added to the outbox. */
  outboxVersion?: number;
  /** The night on which the review retries the outbox if nothing has emptied it by then. */
  outboxRetryAt?: string;
  /**
   * Who is flushing the outbox, and until when: an event or review that finds a live lease held by another leaves
   * the outbox alone (no second StartExecution, no duplicate notices). Written in the same conditional write as the
   * outbox, so taking it costs nothing on a tier change.
   */
  outboxLease?: OutboxLease;
  /**
   * A heavy user's attribute overlay (functions/aws/dynamo-store.ts): day items dated from this local date on may
   * hold attribute changes that are not in `attributes` yet; a reader joins them in, and a save folds them. Only the
   * DynamoDB store sets it.
   */
  overlayFrom?: string;
  /**
   * The overlay's lease: events may write it until two days before this local date, on which the review folds it
   * (reviewIndexDate) and a reader clears both fields if nothing is left to fold.
   */
  overlayUntil?: string;
}

export interface OutboxLease {
  owner: string;
  /** Instant after which another event or the review may take the outbox over. */
  until: string;
}

export type TierTransitionKind = 'entered' | 'promoted' | 'demoted' | 'grace-started' | 'grace-cleared' | 'locked' | 'unlocked';

export interface TierTransition {
  kind: TierTransitionKind;
  fromTier?: string;
  toTier: string;
  /** For grace-started: the local date on which grace expires. */
  graceUntil?: string;
}

export type DecisionTrigger = 'event' | 'review' | 'operator';

/** Why a tier decision came out as it did (decide.ts makes it): stored with every change, printed by `strata explain`. */
export interface Explanation {
  at: string;
  rulesetVersion: string;
  trigger: DecisionTrigger;
  eventId?: string;
  fromTier: string;
  toTier: string;
  qualifiedTier: string;
  transitions: TierTransition[];
  facts: Facts;
  rules: RuleOutcome[];
  note?: string;
}

/**
 * A tier-history entry: the change and its explanation, keyed by the profile version it produced and its id.
 *
 * It is written before the profile write that commits it, so that the explanation never rides in the profile (a
 * profile over 1 KB costs two write units, twice). A writer that then loses the version race leaves an entry that
 * nothing points to: entries form a chain from `UserProfile.lastHistoryId` through `previousId`, and only the chain
 * is history (see committedHistory). Entries stored before the chain existed have no id and end it.
 */
export interface HistoryEntry {
  userId: string;
  at: string;
  version: number;
  fromTier: string;
  toTier: string;
  explanation: Explanation;
  /** Deterministic for a decision, so that a retried write of the same decision is the same entry. */
  id?: string;
  previousId?: string;
}

/**
 * The committed entries among `newestFirst` (every stored entry of a user, newest version first), by following the
 * chain from the profile's lastHistoryId; at most `limit`. Entries from before the chain (no id) are all committed.
 */
export function committedHistory(newestFirst: readonly HistoryEntry[], lastHistoryId: string | undefined, limit: number): HistoryEntry[] {
  if (lastHistoryId === undefined) return newestFirst.filter((entry) => entry.id === undefined).slice(0, Math.max(0, limit));
  const committed: HistoryEntry[] = [];
  let expected: string | undefined = lastHistoryId;
  for (const entry of newestFirst) {
    if (committed.length >= limit) break;
    if (entry.id === undefined) {
      // An entry from before the chain: everything from here on was committed one write at a time.
      if (expected === undefined) committed.push(entry);
      continue;
    }
    if (entry.id !== expected) continue;
    committed.push(entry);
    expected = entry.previousId;
  }
  return committed;
}

/** The profile with its outbox (pending journey, notices, history and the outbox's bookkeeping) taken off. */
export function withoutOutbox(profile: UserProfile): UserProfile {
  const {
    pendingJourney: _journey,
    pendingNotices: _notices,
    pendingHistory: _history,
    outboxVersion: _version,
    outboxRetryAt: _retry,
    outboxLease: _lease,
    ...cleared
  } = profile;
  return cleared;
}

export function newProfile(userId: string, baseTier: string, now: Date): UserProfile {
  return {
    userId,
    tier: baseTier,
    tierSince: now.toISOString(),
    tierEnteredBy: 'start',
    version: 0,
    attributes: {},
  };
}
