/**
 * The DynamoDB adapter of the TierStore port (and of the journey side's user reads and send records), on the
 * single table laid out in table-schema.ts. The same code talks to DynamoDB in AWS and to dynalite locally.
 *
 * Cost is the point of the layout: a typical event is one conditional UpdateItem on a day item kept under 1 KB (one
 * write unit) and one consistent Query that reads the window's day items and the profile together. The profile is
 * written only when the decision changes something, and the review index is a sparse GSI maintained from it.
 *
 * Light and heavy days (the duplicate guard). DynamoDB has no transactions here (dynalite has none), so the guard
 * and the counters must either change in one item or be healed idempotently:
 *
 * - A light day (fewer than `lightDayEvents` events) keeps its event keys in the day item itself (`ids`): one
 *   UpdateItem adds the counters and the key under `NOT contains(ids, key)`, atomically. 1 WRU.
 * - When `ids` is full the day turns heavy (`hv`): the keys it holds are copied to SEEN# guards and removed, so the
 *   day item stays small whatever the day's volume (no item grows with events; the window Query stays cheap). Each
 *   further event of that day makes two writes, after one small read:
 *     R   GetItem SEEN#<key> (eventually consistent, 0.5 RRU): there already, the event is a duplicate; any counters a
 *         crashed attempt of this copy left on this day (p_<key> under another token) are taken back out, and W1 is
 *         never made, so no reader sees a resend counted twice in the meantime
 *     W1  day item: ADD counters, SET p_<key> = token, under `attribute_not_exists(p_<key>) AND NOT contains(ids, key)`
 *     W2  PutItem USER#id / SEEN#<key> {token, date} under `attribute_not_exists(pk)`, with a TTL of the horizon
 *   W2's key has no date, so it is the guard by event id whatever the day. Why this is exact:
 *     - W1 fails on p_<key>: a crashed or concurrent attempt of this event applied the counters; adopt its token
 *       (read from the failed write's old item) and go on to W2 with it. Only one token per key per day is ever applied.
 *     - W2 fails with our token: a previous attempt got there (a crash after W2); nothing to undo.
 *     - W2 fails with another token: the event was applied earlier (another delivery, another day, or while the day
 *       was light); undo W1 under `p_<key> = token` (ADD the negated counters, REMOVE p_<key>), which is idempotent.
 *     - a crash between W1 and W2, or before the undo, leaves p_<key>; the redelivery adopts the token and finishes.
 *     - p_<key> may be removed at any time after W2 succeeded: a later delivery then applies W1 afresh, finds another
 *       token in W2 and undoes itself. So the next heavy write of this store to the same day removes the keys it has
 *       confirmed (no extra write), and p_ entries stay few.
 *   A failed conditional write still costs a write unit, so a day known to be heavy (from an earlier write or the
 *   window read) skips the light attempt. A write to a later day removes the confirmed p_ entries this store
 *   left on earlier days (closeEarlierDays), so finished days keep almost none. A heavy day's signals are
 *   coarsened to the hour and kept as one byte each in binary sets by filter (`*<filter id>`; see SIGNAL_SET_PREFIX),
 *   which decode to the same strings.
 *   The one window left: two copies of one event on different days in flight at the same moment. Both pass R, both
 *   make W1, and the loser of W2 undoes its copy; a decision made in between may see the event twice.
 * - Across days (a producer resend with another date), the ingest settles what the day writes cannot see. Its one
 *   consistent window Query always reaches RESEND_HORIZON_DAYS before the event's date (and every later day), and
 *   returns light days' `ids` and heavy days' `hv` (`copies`). After recordEvent applied a copy (or found it applied
 *   on its own date: the redelivery of an attempt that crashed before its settle), ingest calls settleCopy when that
 *   read shows the key on another light day, or when the copy is on a light day and a heavy day lies within the
 *   horizon (whose keys only its SEEN# guards know). settleCopy decides on the key's SEEN# guard:
 *     - a light copy that saw only heavy days nearby reads the guard (consistently) and keeps itself if there is
 *       none: a heavy copy that has not reached W2 yet reads the window after it and yields (below);
 *     - otherwise it puts a settled guard naming the claimed date (the earliest other light copy's, else its own) under
 *       `attribute_not_exists`. If a guard is there, a settled one names the winner, and an unsettled one (W2 of a
 *       heavy copy, or a day turned heavy) is settled as it stands by a conditional update; except that a heavy copy
 *       that finds a light copy elsewhere re-points its own unsettled guard to it (that light copy came first and
 *       wrote no guard), under the same condition, so that concurrent settles agree on one date;
 *     - a losing copy goes back out: on a light day its key and counters (`DELETE ids :key` under
 *       `contains(ids, :key)`), on a heavy day as a stray (its p_<key> token is not the guard's).
 *   Each copy reads after its own write, so of two copies the later reader always sees the other: exact, with no
 *   extra write or read for a user with no heavy day within the horizon (1 RRU more for the light-day events of a
 *   user with one). A redelivery of a losing light copy applies again, finds the settled guard and goes back out.
 *   What is left: a decision made while both copies are applied may see the event twice; a losing light copy whose
 *   day turned heavy between its write and the settle stays; dates further apart than the horizon (light days) or
 *   a guard past its TTL (heavy days) are not caught. Day items are kept at least the horizon (dayRetentionDays).
 *   `lightDayEvents: 0` makes every day heavy: 2 WRU an event, and no settle needed.
 *
 * ATTRIBUTE OVERLAY. An event that changes profile attributes (a questionnaire answer) would cost a third write on a
 * heavy day, the profile's. Instead its changes (attributeContribution: applyEventToAttributes on an empty profile)
 * ride in W1 as the day's overlay, and no profile write is made unless something else changed (the tier, consent,
 * the review date: decideAndSave writes those as before, and its profile carries the overlays it read):
 *   `ov`        the join (joinAttributes: the same order as applyEventToAttributes) of the attribute changes of the
 *               day's events that wrote it, and its holder, the event key of the last one;
 *   `u_<key>`   beside p_<key>: the overlay that attempt replaced ('' for none), removed with p_<key>.
 *   W1 sets ov to join(expected overlay, the event's changes) under `ov = <expected>` (or none), and replaces an
 *   overlay whose holder is pending (p_<holder> there) only when this store knows that the holder's guard holds its
 *   token (W2 of this store): so the overlay a holder replaced only ever holds changes that count. A refusal shows the
 *   overlay there: W1 is repeated expecting it, or without the overlay (the profile write then carries the change).
 *   The undo of a stray copy (W2 found another token, or settleCopy took it back out) puts back the overlay it
 *   replaced, in the same conditional write as its counters, if it still holds it (no one else can have replaced it).
 *   A reader counts a day's overlay whole when its holder is not pending or its guard holds the holder's token (one
 *   consistent guard read, unless this store wrote it), else the overlay the holder replaced. The profile a read
 *   returns is the stored one joined with the overlays that count; saving it folds them (joins are idempotent).
 * Where readers look, and the lease. Overlays may lie only on days from the profile's `overlayFrom` on: every read
 * (loadUser, loadUserForJourney, and so the review, `strata user`, export and re-judge) joins the overlays of the
 * days it reads from there, reading further back than asked when overlayFrom is earlier. An event writes the overlay
 * only if the stored profile, as this store last read or saved it, holds a lease (`overlayFrom`, `overlayUntil`),
 * its date is at least overlayFrom and yesterday (by the store's clock), and today is at least two days before
 * overlayUntil. A profile that a read of a user with a heavy day today or yesterday returns carries the lease
 * extended (overlayUntil two days on), and overlayFrom moved up to the day before yesterday, or to the earliest
 * overlay whose holder has no guard yet (in flight, or crashed before W2): no overlay can appear later on an earlier
 * day, so saving that profile leaves none unfolded before overlayFrom. The review index lists the profile on
 * overlayUntil at the latest (reviewIndexDate), when the review folds what is left; a read on or after overlayUntil of
 * a user with no recent heavy day and no overlay in flight drops both fields (no event may write one any more:
 * events stopped two days before), so a user who went quiet stops being reviewed for it. A cold cache just pays the
 * profile write, which stores the lease. Light users never have a lease, and pay nothing for any of this.
 * Roll-up: a day is rolled up only if its overlay is folded (before overlayFrom), and the drain drops it. A heavy copy
 * that settleCopy takes back out after another event's W1 replaced its overlay (two events of one user at once, one a
 * resend with another date) stays in that overlay: the window left open, as for counters, by a decision made while
 * both copies are applied.
 *
 * Segments (roll-up). A finished heavy day item is still ~150-250 bytes, most of it key, expiry and attribute names,
 * so a user heavy every day of a 90-day window reads ~20 KB. When a window read (loadUser) is big, the sealed heavy
 * days of each SEGMENT_DAYS-day period are moved into one segment item (`DAY#<last date>~`, inside the same Query
 * range) that keeps each day's values, so that a window starting mid-period takes only its days. The move is a
 * sequence of idempotent conditional writes (seal, segment, drain, delete; see rollUp), and the reader knows per
 * day which item counts: the day item alone while it is sealed, else the segment plus whatever the day item holds
 * (late events, undos). Light days, days with sends and days of earlier layouts are never rolled up.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  DeleteItemCommand,
  type ConsumedCapacity,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type PutItemCommandInput,
  QueryCommand,
  ScanCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { addDays, localDate, minDate } from '../core/dates.js';
import { userRef } from '../core/hash.js';
import type { ImportedDay } from '../core/import-plan.js';
import { RESEND_HORIZON_DAYS } from '../core/ingest.js';
import { DEFAULT_LIGHT_DAY_EVENTS, type DayIncrement, HEAVY_DAY_SIGNAL_SECONDS, coarsenSignal, joinAttributes } from '../core/metrics.js';
import type { JourneyStepStore } from '../core/journey/run-journey-step.js';
import type { TierStore, WindowCopies } from '../core/ports.js';
import type { UserEraser } from '../core/operator.js';
import type { RejudgeProgress, RejudgeStore } from '../core/rejudge.js';
import { instantAtLocalTime } from '../core/local-time.js';
import { reviewIndexDate } from '../core/review-date.js';
import { reviewShard } from '../core/review.js';
import { type DayBucket, type HistoryEntry, type StoredAttribute, type UserProfile, committedHistory } from '../core/state.js';
import {
  PROFILE_KEY,
  REVIEW_CHECKPOINT_KEY,
  SYSTEM_KEY,
  TABLE_KEYS,
  HISTORY_PREFIX,
  dayKey,
  historyKey,
  isSegmentKey,
  reviewPartition,
  SEGMENT_DAYS,
  seenKey,
  segmentFirstDate,
  segmentKey,
  userKey,
} from './table-schema.js';

/** Day items older than this are expired by DynamoDB TTL; it must be at least the longest metric window (400). */
export const DEFAULT_RETENTION_DAYS = 400;
/** Days a day item outlives the longest metric window, so that a late event or a slow review still finds it. */
export const RETENTION_MARGIN_DAYS = 7;
/** Tier-history entries (with their explanations) expire after this many days unless configured otherwise. */
export const DEFAULT_HISTORY_RETENTION_DAYS = 400;
/** SEEN# guards expire after this many days: SQS keeps a message 14 days, and producer resends are covered as long. */
export const DEFAULT_DEDUP_HORIZON_DAYS = 15;
export { DEFAULT_LIGHT_DAY_EVENTS };
/** At most this many confirmed p_<key> entries are removed by one heavy write (they ride along for free). */
const PENDING_REMOVALS_PER_WRITE = 24;
/** At most this many confirmed p_<key> entries are removed when a later day closes an earlier one. */
const CLOSING_REMOVALS_PER_WRITE = 100;
/** An earlier day with at least this many confirmed p_ entries is closed by the next later write (see closeEarlierDays). */
const CLOSE_AT_ONCE_KEYS = 8;
/** Earlier days one heavy write closes at most, so that no single event pays for many. */
const DAYS_CLOSED_PER_WRITE = 2;
/** A window read this big (2 RRU and more) makes its user's sealed heavy days roll up into segments. */
export const DEFAULT_ROLL_UP_READ_BYTES = 6 * 1024;
/** A segment is made only of periods that ended at least this many days before the user's newest day. */
const SEAL_LAG_DAYS = 2;
/** Fewer sealed heavy days than this in a period do not pay for a segment's writes. */
const MIN_SEGMENT_DAYS = 3;
/** Segments one window read makes at most, so that a long backlog is spread over several events. */
const SEGMENTS_PER_READ = 2;
/** Drained day items one window read deletes at most. */
const DRAINED_DELETED_PER_READ = 8;
/** Days SQS may redeliver a message: an attempt that crashed between W1 and W2 may write its guard this much later. */
const REDELIVERY_DAYS = 14;
/** How many heavy days a store remembers, so that their events skip the light attempt (a failed write costs). */
const HEAVY_DAYS_REMEMBERED = 10_000;

/**
 * The day retention that a ruleset needs: its longest window, and at least the resend horizon (light days' keys
 * catch a producer resend with another date), plus a margin (handlers pass this).
 */
export function dayRetentionDays(maxWindowDays: number): number {
  return Math.max(maxWindowDays, RESEND_HORIZON_DAYS) + RETENTION_MARGIN_DAYS;
}
export const REVIEW_PAGE_SIZE = 500;
const MAX_BATCH_WRITE_ITEMS = 25;
const MAX_UNPROCESSED_RETRIES = 6;
/** Items a re-judge Scan page evaluates (every kind is read; the filter keeps profiles). */
const REJUDGE_SCAN_PAGE = 1000;
const REJUDGED_VERSION_KEY = 'REJUDGED_VERSION';
const rejudgeProgressKey = (version: string, segment: number): string => `REJUDGE#${version}#${segment}`;

/**
 * The day item's own attributes. Every other attribute of a day item is a metric counter, named by its counter id
 * from the ruleset (shortened, see counterAttributeName), which keeps items small and lets a new ruleset add counters
 * with no migration, or a signal set (SIGNAL_SET_PREFIX).
 */
const DAY_ATTRIBUTES = {
  eventKeys: 'ids',
  signals: 'sig',
  sends: 'sends',
  sendIds: 'sendIds',
  heavy: 'hv',
  /** A heavy day sealed for its segment (see the roll-up below): while it is there, the day item alone counts. */
  rollSeal: 'rs',
  /** A heavy day's attribute overlay (see ATTRIBUTE OVERLAY at the top of this file). */
  overlay: 'ov',
} as const;
/**
 * A SEEN# guard's attributes: the token of the attempt that counts and its date; `settled` once a resend with
 * another date was settled on it (see settleCopy), after which it never changes.
 */
const GUARD_ATTRIBUTES = { token: 'token', date: 'date', settled: 'settled' } as const;
/** A heavy day's pending key: `p_<event key>` = the token of the attempt whose counters were applied. */
const PENDING_PREFIX = 'p_';
/** Beside a pending key whose attempt wrote the overlay: `u_<event key>` = the overlay it replaced ('' for none). */
const REPLACED_OVERLAY_PREFIX = 'u_';
/** Overlay writes are allowed until this many days before the lease's end (`overlayUntil`), when a reader clears it. */
const OVERLAY_WRITE_MARGIN_DAYS = 2;
/** A heavy user's profile write extends the overlay lease to this many days after its date. */
const OVERLAY_LEASE_DAYS = 2;
/** Days before today from which overlays are written, and from which a fold may not advance `overlayFrom`. */
const OVERLAY_RECENT_DAYS = 1;
const OVERLAY_FOLD_LAG_DAYS = 2;

/** A day's attribute overlay: the join of its writers' attribute changes, and the event key of the last writer. */
interface Overlay {
  holder: string;
  attributes: Record<string, StoredAttribute>;
}

/** Compact text: each (occurredAt, event id) once, and every attribute as [value, index of its stamp]. */
function encodeOverlay(overlay: Overlay): string {
  const stamps: Array<[string, string]> = [];
  const attributes: Record<string, [StoredAttribute['value'], number]> = {};
  for (const [name, attribute] of Object.entries(overlay.attributes)) {
    let i = stamps.findIndex(([at, eventId]) => at === attribute.at && eventId === attribute.eventId);
    if (i < 0) i = stamps.push([attribute.at, attribute.eventId]) - 1;
    attributes[name] = [attribute.value, i];
  }
  return JSON.stringify({ k: overlay.holder, e: stamps, a: attributes });
}

function decodeOverlay(text: string | undefined): Overlay | undefined {
  if (!text) return undefined;
  const { k, e, a } = JSON.parse(text) as { k: string; e: Array<[string, string]>; a: Record<string, [StoredAttribute['value'], number]> };
  const attributes: Record<string, StoredAttribute> = {};
  for (const [name, [value, i]] of Object.entries(a)) attributes[name] = { value, at: e[i]![0], eventId: e[i]![1] };
  return { holder: k, attributes };
}

const laterDate = (a: string, b: string): string => (a > b ? a : b);
/**
 * A day's signals, one binary-set attribute per signal filter: `*<filter id>` = the times they fall at, relative to
 * UTC midnight of the day's date (see signalSetAttributes). An element of one byte is a whole hour (every heavy-day
 * signal, coarsened, and any exact one on the hour), of three bytes an exact second. A signal takes 1-3 bytes this
 * way instead of a ~23-byte string, and every window read reads them all; the set decodes back to exactly the
 * strings. Items written before this layout keep `sig` (strings) and `@<filter id>` (number sets of hours), which
 * are still read (and a day written by both layouts reads as the union).
 */
const SIGNAL_SET_PREFIX = '*';
/** The earlier layout's hourly signals of a heavy day: `@<filter id>` = a number set of hours (read only). */
const HOUR_SIGNAL_PREFIX = '@';
/** A whole hour's element: the hour relative to the day's base, offset so that it fits one unsigned byte. */
const HOUR_ELEMENT_OFFSET = 128;
/** An exact second's element: seconds relative to the day's base, offset to fit three unsigned bytes (about ±97 days). */
const SECOND_ELEMENT_OFFSET = 2 ** 23;
/** The explanation rides compressed: it is most of a history entry's bytes, and bytes are write units. */
const COMPRESSED_PENDING_HISTORY = 'pendingHistoryZ';
const COMPRESSED_EXPLANATION = 'explanationZ';
const NON_COUNTER_ATTRIBUTES: ReadonlySet<string> = new Set([
  TABLE_KEYS.partitionKey,
  TABLE_KEYS.sortKey,
  TABLE_KEYS.timeToLiveAttribute,
  ...Object.values(DAY_ATTRIBUTES),
]);
/**
 * A counter's attribute name. The ruleset's counter ids are `n_` or `s_` and 8 hash characters (ruleset.ts): they are
 * stored as the 8 characters alone (`n_`) or behind `$` (`s_`), which every window read pays for once per day and
 * counter. Any other id is stored as it is, behind `=` if it could be read as one of those forms, so that the names
 * map one to one. Items of the earlier layout (full ids) read back as they are.
 */
const GENERATED_COUNTER_ID = /^([ns])_([A-Za-z0-9_]{8})$/;
const SHORT_COUNT_NAME = /^[A-Za-z0-9_]{8}$/;
const SHORT_SUM_NAME = /^\$[A-Za-z0-9_]{8}$/;
const VERBATIM_COUNTER_ESCAPE = '=';

function counterAttributeName(counterId: string): string {
  const generated = GENERATED_COUNTER_ID.exec(counterId);
  if (generated) return generated[1] === 'n' ? generated[2]! : `$${generated[2]!}`;
  const ambiguous = SHORT_COUNT_NAME.test(counterId) || SHORT_SUM_NAME.test(counterId) || counterId.startsWith(VERBATIM_COUNTER_ESCAPE);
  return ambiguous ? VERBATIM_COUNTER_ESCAPE + counterId : counterId;
}

function counterIdOfAttribute(name: string): string {
  if (SHORT_COUNT_NAME.test(name)) return `n_${name}`;
  if (SHORT_SUM_NAME.test(name)) return `s_${name.slice(1)}`;
  return name.startsWith(VERBATIM_COUNTER_ESCAPE) ? name.slice(VERBATIM_COUNTER_ESCAPE.length) : name;
}
const PROFILE_VERSION_ATTRIBUTE = 'version' satisfies keyof UserProfile;
const OUTBOX_CLEARS_ATTRIBUTE = 'outboxClears' satisfies keyof UserProfile;
/** The profile fields that make up the outbox, emptied together by clearOutbox. */
const OUTBOX_FIELDS = ['pendingJourney', 'pendingNotices', 'outboxVersion', 'outboxRetryAt', 'outboxLease'] as const satisfies ReadonlyArray<
  keyof UserProfile
>;
const CHECKPOINT_DATE_ATTRIBUTE = 'date';
/** In the checkpoint item: the largest review shard count the review has read (see widenReviewShardCount). */
const CHECKPOINT_SHARD_COUNT_ATTRIBUTE = 'shardCount';
const USER_PREFIX = userKey('');
const DAY_PREFIX = dayKey('');

/** The operations reported to `onCapacity` and named in errors. */
export type StoreOperation =
  | 'recordEvent'
  | 'guardEvent'
  | 'settleCopy'
  | 'loadUser'
  | 'saveProfile'
  | 'appendHistory'
  | 'clearOutbox'
  | 'listDueForReview'
  | 'getReviewCheckpoint'
  | 'setReviewCheckpoint'
  | 'listHistory'
  | 'loadUserForJourney'
  | 'recordSend'
  | 'deleteUserItems'
  | 'scanUserIds'
  | 'rejudgeCheckpoint'
  | 'rollUp'
  | ReviewUpkeepOperation;

/** The review upkeep operations (deferReview, widenReviewShardCount), kept apart from the event path. */
export type ReviewUpkeepOperation = 'deferReview' | 'widenReviewShardCount';

export interface CapacityUnits {
  read: number;
  write: number;
}

/** The journey side's port, defined by the journey core (run-journey-step.ts); this adapter implements it as is. */
export type JourneyUserStore = JourneyStepStore;
/** Both ports this adapter serves: the tier services' store and the journey step's reads and send records. */
export type DynamoTierStore = TierStore & JourneyUserStore & UserEraser & RejudgeStore;

export interface DynamoTierStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Partitions of the review index per date; the nightly job reviews them in parallel. */
  shardCount: number;
  /** The ruleset's time zone: day items expire at local midnight. Default UTC. */
  timeZone?: string;
  /** Days a day item is kept. Default 400, the longest window a ruleset may declare; see dayRetentionDays. */
  retentionDays?: number;
  /** Days a tier-history entry is kept. Default 400. */
  historyRetentionDays?: number;
  /** Days a heavy day's SEEN# guard is kept. Default 15. */
  dedupHorizonDays?: number;
  /**
   * Event keys a day item holds before the day turns heavy. Default 16. 0 makes every day heavy: each event then
   * costs 2 WRU, and a producer resend with another date is caught whatever the days (see the top of this file).
   */
  lightDayEvents?: number;
  /**
   * A window read (loadUser) at least this many bytes rolls the user's sealed heavy days up into segments. Default
   * DEFAULT_ROLL_UP_READ_BYTES; Infinity never rolls up (a typical user's window is far smaller and never pays).
   */
  rollUpReadBytes?: number;
  /** Called when a roll-up stops on an error (the read is unaffected; a later read resumes it), for the logs. */
  onRollUpFailure?: (userId: string, error: unknown) => void;
  /** Called before each write of a roll-up (tests stop the protocol between any two steps by throwing). */
  onRollUpStep?: (step: RollUpStep, date: string) => void;
  /** The wall clock for guard and history expiry (TTL is wall-clock time). Default: the system clock. */
  now?: () => Date;
  /** Called with the units DynamoDB reports for every request, so that capacity per event can be measured. */
  onCapacity?: (operation: StoreOperation, capacity: CapacityUnits) => void;
}

/** The writes of a roll-up, in order (see rollUp). */
export type RollUpStep = 'seal' | 'segment' | 'drain' | 'delete';

/** A store failure that retrying will not fix (a malformed request or item, a missing table, access denied). */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly operation: StoreOperation,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`DynamoStore: ${operation}: ${message}`, options);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

const TRANSIENT_ERROR_NAMES: ReadonlySet<string> = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

interface ServiceErrorShape {
  name?: string;
  code?: string;
  $fault?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** Throttling, server faults and dropped connections: the caller (SQS redelivery, the review's rerun) retries. */
export function isTransientError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const shape = error as ServiceErrorShape;
  return (
    TRANSIENT_ERROR_NAMES.has(shape.name ?? '') ||
    shape.$retryable !== undefined ||
    shape.$fault === 'server' ||
    (shape.$metadata?.httpStatusCode ?? 0) >= 500 ||
    NETWORK_ERROR_CODES.has(shape.code ?? '')
  );
}

/** The condition of a write that only creates: DynamoDB refuses it (ConditionalCheckFailedException) when the item is there. */
export const ONLY_IF_NEW = Object.freeze({
  ConditionExpression: 'attribute_not_exists(#pk)',
  // Frozen: every request shares this object.
  ExpressionAttributeNames: Object.freeze({ '#pk': TABLE_KEYS.partitionKey }),
}) satisfies Pick<PutItemCommandInput, 'ConditionExpression' | 'ExpressionAttributeNames'>;

export function isConditionalCheckFailure(error: unknown): boolean {
  return (error as ServiceErrorShape | undefined)?.name === 'ConditionalCheckFailedException';
}

/** Resolves undefined when the request's condition does not hold, which is an answer here, not a failure. */
export async function unlessConditionFails<T>(request: Promise<T>): Promise<T | undefined> {
  try {
    return await request;
  } catch (error) {
    if (isConditionalCheckFailure(error)) return undefined;
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Plain values <-> DynamoDB attribute values. @aws-sdk/util-dynamodb is not installed (it is not a dependency of
// the low-level client), and the store needs only JSON-shaped values, so this is the small subset it needs.

type Item = Record<string, AttributeValue>;

function toAttribute(value: unknown, path: string): AttributeValue | undefined {
  if (value === undefined) return undefined;
  if (value === null) return { NULL: true };
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'boolean':
      return { BOOL: value };
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${path} is ${value}, which DynamoDB cannot store`);
      return { N: String(value) };
    case 'object':
      if (value instanceof Uint8Array) return { B: value };
      if (Array.isArray(value)) {
        return { L: value.flatMap((element, i) => toAttribute(element, `${path}[${i}]`) ?? []) };
      }
      return { M: toItem(value as Record<string, unknown>, path) };
    default:
      throw new TypeError(`${path} is a ${typeof value}, which DynamoDB cannot store`);
  }
}

/** Like util-dynamodb's marshall with removeUndefinedValues: undefined fields are left out. */
function toItem(values: Record<string, unknown>, path = ''): Item {
  const item: Item = {};
  for (const [name, value] of Object.entries(values)) {
    const attribute = toAttribute(value, path ? `${path}.${name}` : name);
    if (attribute !== undefined) item[name] = attribute;
  }
  return item;
}

function fromAttribute(attribute: AttributeValue): unknown {
  if (attribute.S !== undefined) return attribute.S;
  if (attribute.N !== undefined) return Number(attribute.N);
  if (attribute.BOOL !== undefined) return attribute.BOOL;
  if (attribute.NULL !== undefined) return null;
  if (attribute.L !== undefined) return attribute.L.map(fromAttribute);
  if (attribute.M !== undefined) return fromItem(attribute.M);
  if (attribute.SS !== undefined) return attribute.SS;
  if (attribute.NS !== undefined) return attribute.NS.map(Number);
  if (attribute.B !== undefined) return attribute.B;
  if (attribute.BS !== undefined) return attribute.BS;
  return undefined;
}

function fromItem(item: Item): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, attribute] of Object.entries(item)) values[name] = fromAttribute(attribute);
  return values;
}

/**
 * An item's size as DynamoDB bills it: attribute names plus values (UTF-8 strings, numbers at about one byte per
 * two digits, binary as is, 3 bytes per list or map plus its elements). Used by tests and benchmarks to show that
 * no item grows with a user's activity.
 */
export function itemSizeBytes(item: Item): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) bytes += Buffer.byteLength(name) + attributeSizeBytes(value);
  return bytes;
}

function attributeSizeBytes(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return Math.ceil(value.N.replace(/^-|\./g, '').length / 2) + 1;
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + Math.ceil(n.length / 2) + 1, 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, element) => sum + 1 + attributeSizeBytes(element), 0);
  if (value.M !== undefined)
    return 3 + Object.entries(value.M).reduce((sum, [name, element]) => sum + 1 + Buffer.byteLength(name) + attributeSizeBytes(element), 0);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Item mapping

/** Epoch seconds of the local midnight that starts `date` in `timeZone`. */
function startOfLocalDay(date: string, timeZone: string): number {
  return Math.floor(instantAtLocalTime(date, 0, timeZone).getTime() / 1000);
}

/**
 * REMOVE targets for these event keys' p_ entries (a heavy day's pending markers) and the u_ entries that go with
 * them (an overlay's replaced value is kept only while its writer is pending), named into `names`.
 */
function pendingRemovals(eventKeys: readonly string[], names: Record<string, string>): string[] {
  return eventKeys.flatMap((key, i) => {
    names[`#r${i}`] = PENDING_PREFIX + key;
    names[`#q${i}`] = REPLACED_OVERLAY_PREFIX + key;
    return [`#r${i}`, `#q${i}`];
  });
}

/** The first hour (epoch hours) of a day's hourly signals: UTC midnight of its date, whatever the time zone. */
function signalHourBase(date: string): number {
  return Date.parse(`${date}T00:00:00Z`) / 3_600_000;
}

/** A signal's element in its filter's set (see SIGNAL_SET_PREFIX), or undefined if it has no such form. */
function signalElement(base: number, seconds: number): Uint8Array | undefined {
  if (!Number.isInteger(seconds)) return undefined;
  const relative = seconds - base * HEAVY_DAY_SIGNAL_SECONDS;
  if (relative % HEAVY_DAY_SIGNAL_SECONDS === 0) {
    const hour = relative / HEAVY_DAY_SIGNAL_SECONDS + HOUR_ELEMENT_OFFSET;
    if (hour >= 0 && hour < 256) return Uint8Array.of(hour);
  }
  const second = relative + SECOND_ELEMENT_OFFSET;
  if (second < 0 || second >= 2 ** 24) return undefined;
  return Uint8Array.of(second >>> 16, (second >>> 8) & 0xff, second & 0xff);
}

/** The seconds an element stands for (the inverse of signalElement). */
function elementSeconds(base: number, element: Uint8Array): number | undefined {
  if (element.length === 1) return (base + element[0]! - HOUR_ELEMENT_OFFSET) * HEAVY_DAY_SIGNAL_SECONDS;
  if (element.length !== 3) return undefined;
  return base * HEAVY_DAY_SIGNAL_SECONDS + ((element[0]! << 16) | (element[1]! << 8) | element[2]!) - SECOND_ELEMENT_OFFSET;
}

/**
 * Signals (`filter@epochSeconds`) as binary-set attributes by filter (SIGNAL_SET_PREFIX); a signal with no such form
 * (not whole seconds, or far from its day) is returned apart, for the string set. Live writes (ADD) and import's day
 * items both use this, so the two layouts agree.
 */
function signalSetAttributes(date: string, signals: readonly string[]): { byAttribute: Map<string, Uint8Array[]>; strings: string[] } {
  const base = signalHourBase(date);
  const byAttribute = new Map<string, Uint8Array[]>();
  const strings: string[] = [];
  for (const signal of new Set(signals)) {
    const at = signal.lastIndexOf('@');
    const seconds = Number(signal.slice(at + 1));
    // Only the canonical form (`filter@<integer>`), so that the element decodes to exactly this string.
    const element = at > 0 && signal.slice(at + 1) === String(seconds) ? signalElement(base, seconds) : undefined;
    if (element === undefined) {
      strings.push(signal);
      continue;
    }
    const name = SIGNAL_SET_PREFIX + signal.slice(0, at);
    const elements = byAttribute.get(name) ?? [];
    // One signal, one element: an exact second on the hour takes the hour's form, so no set holds both.
    elements.push(element);
    byAttribute.set(name, elements);
  }
  return { byAttribute, strings };
}

function dayBucketOf(item: Item): DayBucket {
  const counters: Record<string, number> = {};
  const date = (item[TABLE_KEYS.sortKey]?.S ?? '').slice(DAY_PREFIX.length);
  const strings = item[DAY_ATTRIBUTES.signals]?.SS;
  let decoded: string[] | undefined;
  /** The day's UTC midnight in hours, read once for every signal set of the item. */
  let hourBase: number | undefined;
  for (const [name, attribute] of Object.entries(item)) {
    if (attribute.N !== undefined) {
      if (NON_COUNTER_ATTRIBUTES.has(name)) continue;
      // A day written by both layouts (during a deploy) may hold a counter under both names: they add up.
      const counterId = counterIdOfAttribute(name);
      counters[counterId] = (counters[counterId] ?? 0) + Number(attribute.N);
    } else if (attribute.BS !== undefined && name.startsWith(SIGNAL_SET_PREFIX)) {
      const base = (hourBase ??= signalHourBase(date));
      const filterId = name.slice(SIGNAL_SET_PREFIX.length);
      decoded ??= [];
      for (const element of attribute.BS) {
        const seconds = elementSeconds(base, element);
        if (seconds !== undefined) decoded.push(`${filterId}@${seconds}`);
      }
    } else if (attribute.NS !== undefined && name.startsWith(HOUR_SIGNAL_PREFIX)) {
      const base = (hourBase ??= signalHourBase(date));
      const filterId = name.slice(HOUR_SIGNAL_PREFIX.length);
      decoded ??= [];
      for (const hour of attribute.NS) decoded.push(`${filterId}@${(base + Number(hour)) * HEAVY_DAY_SIGNAL_SECONDS}`);
    }
  }
  const bucket: DayBucket = { date, counters };
  // A signal may be in more than one form (a light one on the hour, or a day written by both layouts): once each.
  if (decoded) bucket.signals = [...new Set([...(strings ?? []), ...decoded])];
  else if (strings) bucket.signals = strings;
  const sends = item[DAY_ATTRIBUTES.sends]?.N;
  if (sends !== undefined) bucket.sends = Number(sends);
  return bucket;
}

// ---------------------------------------------------------------------------------------------------------------
// Segments: sealed heavy days rolled up (the protocol is described at createDynamoTierStore's rollUp)

/** A day's values that a segment holds: counters (attribute name to DynamoDB number text) and signal sets. */
interface DayValues {
  counters: Map<string, string>;
  signalSets: Map<string, Uint8Array[]>;
}

interface Segment {
  firstDate: string;
  days: Map<string, DayValues>;
}

/**
 * A segment item's attributes besides its counters (strings of per-day numbers, `,`-separated by day offset, empty
 * where a day has none) and its signals (`*<filter id>`, one binary value per filter: for each day that has any,
 * its offset, then its one-byte elements and its three-byte elements, each run behind a two-byte count, so that a
 * day's hourly signals cost a byte each, as in its day item): `dd`, the bit mask of the day offsets it holds.
 */
const SEGMENT_DAYS_ATTRIBUTE = 'dd';
const SEGMENT_VALUE_SEPARATOR = ',';

/**
 * The day item's values if it can be rolled up (a heavy day with counters, binary signal sets and pending keys only,
 * and an attribute overlay only if the profile has folded it: the day is before `overlayFrom`, and the drain drops it).
 */
function rollableValues(item: Item, overlayFolded: boolean): DayValues | undefined {
  if (item[DAY_ATTRIBUTES.heavy]?.BOOL !== true) return undefined;
  const values: DayValues = { counters: new Map(), signalSets: new Map() };
  for (const [name, attribute] of Object.entries(item)) {
    if (name === TABLE_KEYS.partitionKey || name === TABLE_KEYS.sortKey || name === TABLE_KEYS.timeToLiveAttribute) continue;
    if (name === DAY_ATTRIBUTES.heavy || name === DAY_ATTRIBUTES.rollSeal) continue;
    if (name === DAY_ATTRIBUTES.overlay && overlayFolded) continue;
    if ((name.startsWith(PENDING_PREFIX) || name.startsWith(REPLACED_OVERLAY_PREFIX)) && attribute.S !== undefined) continue;
    if (attribute.N !== undefined && !NON_COUNTER_ATTRIBUTES.has(name)) values.counters.set(name, attribute.N);
    else if (attribute.BS !== undefined && name.startsWith(SIGNAL_SET_PREFIX)) values.signalSets.set(name, attribute.BS);
    // Light keys, sends, string or earlier-layout signals: the day stays a day item.
    else return undefined;
  }
  return values;
}

function segmentItemOf(userId: string, firstDate: string, days: ReadonlyMap<string, DayValues>, expiresAtSeconds: number): Item {
  const item: Item = {
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: segmentKey(addDays(firstDate, SEGMENT_DAYS - 1)) },
    [TABLE_KEYS.timeToLiveAttribute]: { N: String(expiresAtSeconds) },
  };
  let mask = 0;
  const counters = new Map<string, string[]>();
  const signals = new Map<string, number[]>();
  for (const [date, values] of [...days].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const offset = daysBetween(firstDate, date);
    mask |= 1 << offset;
    for (const [name, amount] of values.counters) {
      const byOffset = counters.get(name) ?? [];
      byOffset[offset] = amount;
      counters.set(name, byOffset);
    }
    for (const [name, elements] of values.signalSets) {
      const bytes = signals.get(name) ?? [];
      bytes.push(offset);
      for (const width of [1, 3]) {
        const run = elements.filter((element) => element.length === width);
        bytes.push(run.length >>> 8, run.length & 0xff);
        for (const element of run) bytes.push(...element);
      }
      signals.set(name, bytes);
    }
  }
  item[SEGMENT_DAYS_ATTRIBUTE] = { N: String(mask) };
  for (const [name, byOffset] of counters) item[name] = { S: Array.from(byOffset, (amount) => amount ?? '').join(SEGMENT_VALUE_SEPARATOR) };
  for (const [name, bytes] of signals) item[name] = { B: Uint8Array.from(bytes) };
  return item;
}

/** The elements of each day in a segment's signal value (the inverse of segmentItemOf's encoding). */
function segmentSignalsOf(bytes: Uint8Array): Map<number, Uint8Array[]> {
  const byOffset = new Map<number, Uint8Array[]>();
  let at = 0;
  while (at < bytes.length) {
    const elements: Uint8Array[] = [];
    byOffset.set(bytes[at++]!, elements);
    for (const width of [1, 3]) {
      const count = (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
      for (let i = 0; i < count; i++, at += width) elements.push(bytes.subarray(at, at + width));
    }
  }
  return byOffset;
}

function segmentOf(item: Item): Segment {
  const lastDate = (item[TABLE_KEYS.sortKey]?.S ?? '').slice(DAY_PREFIX.length, DAY_PREFIX.length + 10);
  const firstDate = addDays(lastDate, -(SEGMENT_DAYS - 1));
  const mask = Number(item[SEGMENT_DAYS_ATTRIBUTE]?.N ?? 0);
  const byOffset: DayValues[] = [];
  for (let offset = 0; offset < SEGMENT_DAYS; offset++) {
    if (mask & (1 << offset)) byOffset[offset] = { counters: new Map(), signalSets: new Map() };
  }
  for (const [name, attribute] of Object.entries(item)) {
    if (attribute.S !== undefined && name !== TABLE_KEYS.partitionKey && name !== TABLE_KEYS.sortKey) {
      attribute.S.split(SEGMENT_VALUE_SEPARATOR).forEach((amount, offset) => {
        if (amount !== '') byOffset[offset]?.counters.set(name, amount);
      });
    } else if (attribute.B !== undefined && name.startsWith(SIGNAL_SET_PREFIX)) {
      for (const [offset, elements] of segmentSignalsOf(attribute.B)) byOffset[offset]?.signalSets.set(name, elements);
    }
  }
  const days = new Map<string, DayValues>();
  byOffset.forEach((values, offset) => {
    if (values) days.set(addDays(firstDate, offset), values);
  });
  return { firstDate, days };
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/**
 * The exact sum of two DynamoDB numbers (decimal text), as DynamoDB's own ADD would store it: a rolled-up day read
 * back as segment plus late increments must equal the day item it was, not differ in the last binary digit.
 */
function addNumbers(a: string, b: string): string {
  if (/[eE]/.test(a + b)) return String(Number(a) + Number(b));
  const parse = (text: string) => {
    const [whole = '0', fraction = ''] = text.replace(/^[-+]/, '').split('.');
    return { negative: text.startsWith('-'), whole: whole || '0', fraction };
  };
  const x = parse(a);
  const y = parse(b);
  const scale = Math.max(x.fraction.length, y.fraction.length);
  const scaled = (p: ReturnType<typeof parse>): bigint => (p.negative ? -1n : 1n) * BigInt(p.whole + p.fraction.padEnd(scale, '0'));
  const sum = scaled(x) + scaled(y);
  const digits = (sum < 0n ? -sum : sum).toString().padStart(scale + 1, '0');
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, '');
  return `${sum < 0n ? '-' : ''}${digits.slice(0, digits.length - scale)}${fraction ? `.${fraction}` : ''}`;
}

const negated = (amount: string): string => (/^-?0*\.?0*$/.test(amount) ? '0' : amount.startsWith('-') ? amount.slice(1) : `-${amount}`);

/** A day as the window reads it: its day item (if any) plus what its segment holds for it. */
function withSegmentValues(date: string, dayItem: Item | undefined, values: DayValues): Item {
  const item: Item = dayItem ? { ...dayItem } : { [TABLE_KEYS.sortKey]: { S: dayKey(date) } };
  for (const [name, amount] of values.counters) {
    const stored = item[name]?.N;
    item[name] = { N: stored === undefined ? amount : addNumbers(stored, amount) };
  }
  for (const [name, elements] of values.signalSets) {
    const byText = new Map((item[name]?.BS ?? []).map((element) => [Buffer.from(element).toString('hex'), element]));
    for (const element of elements) byText.set(Buffer.from(element).toString('hex'), element);
    item[name] = { BS: [...byText.values()] };
  }
  return item;
}

/** The user's fields are stored under the user's key; the id itself lives only in the key. */
function userItem(userId: string, sortKey: string, fields: Record<string, unknown>): Item {
  return { ...toItem(fields), [TABLE_KEYS.partitionKey]: { S: userKey(userId) }, [TABLE_KEYS.sortKey]: { S: sortKey } };
}

function userIdOf(item: Item): string {
  return (item[TABLE_KEYS.partitionKey]?.S ?? '').slice(USER_PREFIX.length);
}

/** Item fields without the table's keys and index key. */
function storedFields(item: Item): Record<string, unknown> {
  const { [TABLE_KEYS.partitionKey]: _pk, [TABLE_KEYS.sortKey]: _sk, [TABLE_KEYS.reviewPartitionKey]: _review, ...rest } = item;
  return fromItem(rest);
}

function compress(value: unknown): Uint8Array {
  return deflateRawSync(Buffer.from(JSON.stringify(value)));
}

function decompress(value: unknown): unknown {
  return JSON.parse(inflateRawSync(value as Uint8Array).toString('utf8'));
}

function profileOf(item: Item, operation: StoreOperation): UserProfile {
  const { [COMPRESSED_PENDING_HISTORY]: pendingHistory, ...fields } = storedFields(item);
  if (pendingHistory !== undefined) fields['pendingHistory'] = decompress(pendingHistory);
  const userId = userIdOf(item);
  if (typeof fields['tier'] !== 'string' || typeof fields[PROFILE_VERSION_ATTRIBUTE] !== 'number') {
    throw new StoreError(operation, `the profile item of ${userRef(userId)} has no tier or version`);
  }
  return { attributes: {}, ...fields, userId } as UserProfile;
}

function historyEntryOf(item: Item): HistoryEntry {
  const { [COMPRESSED_EXPLANATION]: explanation, [TABLE_KEYS.timeToLiveAttribute]: _expiresAt, ...fields } = storedFields(item);
  if (explanation !== undefined) fields['explanation'] = decompress(explanation);
  return { ...fields, userId: userIdOf(item) } as HistoryEntry;
}

/** The profile item saveProfile writes as `version`, with its review index key. */
function profileItemOf(profile: UserProfile, version: number, shardCount: number): Item {
  const { userId, version: _previous, pendingHistory, ...fields } = profile;
  const item = userItem(userId, PROFILE_KEY, {
    ...fields,
    ...(pendingHistory?.length ? { [COMPRESSED_PENDING_HISTORY]: compress(pendingHistory) } : {}),
    [PROFILE_VERSION_ATTRIBUTE]: version,
  });
  // The review index is sparse: a profile with no review date is simply not in it.
  const indexDate = reviewIndexDate(profile);
  if (indexDate !== undefined) item[TABLE_KEYS.reviewPartitionKey] = { S: reviewPartition(indexDate, reviewShard(userId, shardCount)) };
  return item;
}

/** The history item appendHistory writes, with its TTL (epoch seconds). */
function historyItemOf(entry: HistoryEntry, historyRetentionDays: number): Item {
  const { userId, explanation, ...fields } = entry;
  const historyExpiresAt = Math.floor(Date.parse(entry.at) / 1000) + historyRetentionDays * 86_400;
  return userItem(userId, historyKey(entry.version, entry.id), {
    ...fields,
    [COMPRESSED_EXPLANATION]: compress(explanation),
    [TABLE_KEYS.timeToLiveAttribute]: historyExpiresAt,
  });
}

/** An event key's SEEN# guard, as putGuard writes it (see GUARD_ATTRIBUTES). */
function guardItemOf(userId: string, eventKey: string, token: string, date: string, expiresAtSeconds: number, settled = false): Item {
  return {
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: seenKey(eventKey) },
    [GUARD_ATTRIBUTES.token]: { S: token },
    [GUARD_ATTRIBUTES.date]: { S: date },
    ...(settled ? { [GUARD_ATTRIBUTES.settled]: { BOOL: true } } : {}),
    [TABLE_KEYS.timeToLiveAttribute]: { N: String(expiresAtSeconds) },
  };
}

/** The token that marks the guards of keys that were never pending on a heavy day: no heavy attempt ever has it. */
const LIGHT_TOKEN = 'light';

/**
 * Whole items in the layout the live writes leave (recordEvent, saveProfile, appendHistory), for `strata import`'s
 * BatchWriteItem. Built by the helpers those writes use, so that the two never drift apart. An item whose TTL has
 * already passed is left out (undefined): DynamoDB would delete it anyway.
 */
export interface TableItemLayout {
  profileItem(profile: UserProfile): Item;
  historyItem(entry: HistoryEntry): Item | undefined;
  dayItem(userId: string, day: ImportedDay): Item | undefined;
  /** The day's SEEN# guards, for a heavy day within the dedup horizon (older keys cannot come back from SQS). */
  guardItems(userId: string, day: ImportedDay): Item[];
}

export function tableItemLayout(
  options: Pick<DynamoTierStoreOptions, 'shardCount' | 'timeZone' | 'retentionDays' | 'historyRetentionDays' | 'dedupHorizonDays' | 'now'>,
): TableItemLayout {
  const timeZone = options.timeZone ?? 'UTC';
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  const historyRetentionDays = options.historyRetentionDays ?? DEFAULT_HISTORY_RETENTION_DAYS;
  const dedupHorizonDays = options.dedupHorizonDays ?? DEFAULT_DEDUP_HORIZON_DAYS;
  const now = options.now ?? (() => new Date());
  return {
    profileItem: (profile) => profileItemOf(profile, profile.version, options.shardCount),
    historyItem(entry) {
      const item = historyItemOf(entry, historyRetentionDays);
      return Number(item[TABLE_KEYS.timeToLiveAttribute]!.N) * 1000 > now().getTime() ? item : undefined;
    },
    dayItem(userId, day) {
      const expiresAtSeconds = startOfLocalDay(addDays(day.date, retentionDays), timeZone);
      if (expiresAtSeconds * 1000 <= now().getTime()) return undefined;
      const item: Item = {
        [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
        [TABLE_KEYS.sortKey]: { S: dayKey(day.date) },
        [TABLE_KEYS.timeToLiveAttribute]: { N: String(expiresAtSeconds) },
      };
      for (const [counterId, amount] of Object.entries(day.counters)) item[counterAttributeName(counterId)] = toAttribute(amount, counterId)!;
      if (day.heavy) item[DAY_ATTRIBUTES.heavy] = { BOOL: true };
      else if (day.eventKeys.length > 0) item[DAY_ATTRIBUTES.eventKeys] = { SS: [...day.eventKeys] };
      if (day.signals?.length) {
        // As live writes leave them: by filter, a heavy day's hourly ones and a light day's (or beginning's) exact ones.
        const { byAttribute, strings } = signalSetAttributes(day.date, day.signals);
        for (const [name, elements] of byAttribute) item[name] = { BS: elements };
        if (strings.length > 0) item[DAY_ATTRIBUTES.signals] = { SS: strings };
      }
      if (day.sends !== undefined) item[DAY_ATTRIBUTES.sends] = { N: String(day.sends) };
      if (day.sendIds?.length) item[DAY_ATTRIBUTES.sendIds] = { SS: [...day.sendIds] };
      if (day.overlay) item[DAY_ATTRIBUTES.overlay] = { S: day.overlay };
      return item;
    },
    guardItems(userId, day) {
      if (!day.heavy || day.date < addDays(localDate(now(), timeZone), -dedupHorizonDays)) return [];
      const expiresAtSeconds = Math.floor(now().getTime() / 1000) + dedupHorizonDays * 86_400;
      return day.guardKeys.map((eventKey) => guardItemOf(userId, eventKey, LIGHT_TOKEN, day.date, expiresAtSeconds));
    },
  };
}

/**
 * `strata import --rebuild` rewrites days that a segment may hold (sealed heavy days rolled up): the segment must
 * then stop holding them, or they would count twice. Returns the segment items among `stored` that hold any of
 * `dates`, rewritten without them (a segment left with no day stays, holding none, until its TTL); written before
 * the rebuilt day items.
 */
export function segmentsWithoutDates(stored: readonly Item[], dates: ReadonlySet<string>): Item[] {
  const rewritten: Item[] = [];
  for (const item of stored) {
    if (!isSegmentKey(item[TABLE_KEYS.sortKey]?.S ?? '')) continue;
    const segment = segmentOf(item);
    const kept = new Map([...segment.days].filter(([date]) => !dates.has(date)));
    if (kept.size === segment.days.size) continue;
    const userId = userIdOf(item);
    rewritten.push(segmentItemOf(userId, segment.firstDate, kept, Number(item[TABLE_KEYS.timeToLiveAttribute]?.N ?? 0)));
  }
  return rewritten;
}

/**
 * The stored attributes of a day item other than its counters that `strata import --rebuild` keeps: the journey
 * sends, and the attribute overlay as it counts (the one its writer replaced while that writer is pending: the
 * rebuilt item has no pending markers).
 */
export function dayItemKept(item: Item): { sends?: number; sendIds?: string[]; overlay?: string } {
  const sends = item[DAY_ATTRIBUTES.sends]?.N;
  const sendIds = item[DAY_ATTRIBUTES.sendIds]?.SS;
  const stored = item[DAY_ATTRIBUTES.overlay]?.S;
  const holder = decodeOverlay(stored)?.holder;
  const overlay = holder !== undefined && item[PENDING_PREFIX + holder] !== undefined ? item[REPLACED_OVERLAY_PREFIX + holder]?.S : stored;
  return { ...(sends !== undefined ? { sends: Number(sends) } : {}), ...(sendIds ? { sendIds } : {}), ...(overlay ? { overlay } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Cursors of the review index: the LastEvaluatedKey, as base64url JSON.

function encodeCursor(lastEvaluatedKey: Item): string {
  return Buffer.from(JSON.stringify(lastEvaluatedKey)).toString('base64url');
}

function decodeCursor(cursor: string, expectedPartition: string): Item {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (error) {
    throw new StoreError('listDueForReview', 'the cursor is not one this store returned', { cause: error });
  }
  const isStringKey = (value: unknown): boolean => typeof value === 'object' && value !== null && typeof (value as AttributeValue).S === 'string';
  const valid =
    typeof key === 'object' &&
    key !== null &&
    Object.values(key).every(isStringKey) &&
    (key as Item)[TABLE_KEYS.reviewPartitionKey]?.S === expectedPartition;
  if (!valid) throw new StoreError('listDueForReview', `the cursor does not belong to ${expectedPartition}`);
  return key as Item;
}

/** A Scan cursor: a LastEvaluatedKey of the table itself (partition and sort key strings). */
function decodeScanCursor(cursor: string): Item {
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch (error) {
    throw new StoreError('scanUserIds', 'the cursor is not one this store returned', { cause: error });
  }
  const item = key as Item;
  if (typeof item?.[TABLE_KEYS.partitionKey]?.S !== 'string' || typeof item[TABLE_KEYS.sortKey]?.S !== 'string') {
    throw new StoreError('scanUserIds', 'the cursor is not a key of this table');
  }
  return { [TABLE_KEYS.partitionKey]: item[TABLE_KEYS.partitionKey]!, [TABLE_KEYS.sortKey]: item[TABLE_KEYS.sortKey]! };
}

// ---------------------------------------------------------------------------------------------------------------

export function createDynamoTierStore(options: DynamoTierStoreOptions): DynamoTierStore {
  const { client, tableName, shardCount, onCapacity } = options;
  const timeZone = options.timeZone ?? 'UTC';
  const retentionDays = options.retentionDays ?? DEFAULT_RETENTION_DAYS;
  const historyRetentionDays = options.historyRetentionDays ?? DEFAULT_HISTORY_RETENTION_DAYS;
  const dedupHorizonDays = options.dedupHorizonDays ?? DEFAULT_DEDUP_HORIZON_DAYS;
  const lightDayEvents = options.lightDayEvents ?? DEFAULT_LIGHT_DAY_EVENTS;
  const wallClock = options.now ?? (() => new Date());
  for (const [name, value] of Object.entries({ historyRetentionDays, dedupHorizonDays })) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`DynamoStore: ${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(lightDayEvents) || lightDayEvents < 0)
    throw new RangeError(`DynamoStore: lightDayEvents must be a whole number, got ${lightDayEvents}`);
  if (!Number.isInteger(shardCount) || shardCount < 1) throw new RangeError(`DynamoStore: shardCount must be a positive integer, got ${shardCount}`);
  if (!Number.isInteger(retentionDays) || retentionDays < 1)
    throw new RangeError(`DynamoStore: retentionDays must be a positive integer, got ${retentionDays}`);

  const common = { TableName: tableName, ReturnConsumedCapacity: 'TOTAL' } as const;
  const names = { '#pk': TABLE_KEYS.partitionKey, '#sk': TABLE_KEYS.sortKey } as const;

  /** Reports what a request consumed. DynamoDB (and dynalite) give one total; the operation says which kind. */
  async function metered<Output extends { ConsumedCapacity?: ConsumedCapacity }>(
    operation: StoreOperation,
    kind: keyof CapacityUnits,
    request: Promise<Output>,
  ): Promise<Output> {
    const output = await request;
    const consumed = output.ConsumedCapacity;
    if (onCapacity && consumed) {
      const total = consumed.CapacityUnits ?? 0;
      onCapacity(operation, {
        read: consumed.ReadCapacityUnits ?? (kind === 'read' ? total : 0),
        write: consumed.WriteCapacityUnits ?? (kind === 'write' ? total : 0),
      });
    }
    return output;
  }

  /** Transient errors pass through untouched for the caller to retry; anything else becomes a StoreError. */
  async function guarded<T>(operation: StoreOperation, userId: string | undefined, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (error instanceof StoreError || isTransientError(error)) throw error;
      const subject = userId === undefined ? '' : ` for ${userRef(userId)}`;
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new StoreError(operation, `failed${subject} (${reason})`, { cause: error });
    }
  }

  /** Every page of a Query, each metered. */
  async function queryAll(operation: StoreOperation, input: Omit<QueryCommandInput, 'TableName'>, limit = Infinity): Promise<Item[]> {
    const items: Item[] = [];
    let exclusiveStartKey: Item | undefined;
    do {
      const page: QueryCommandOutput = await metered(
        operation,
        'read',
        client.send(new QueryCommand({ ...common, ...input, ...(exclusiveStartKey ? { ExclusiveStartKey: exclusiveStartKey } : {}) })),
      );
      items.push(...(page.Items ?? []));
      exclusiveStartKey = page.LastEvaluatedKey;
    } while (exclusiveStartKey && items.length < limit);
    return items.slice(0, limit);
  }

  /** One consistent Query returns the window's day items and the profile: DAY#… sorts before PROFILE. */
  async function loadWindow(
    operation: StoreOperation,
    userId: string,
    fromDate: string,
  ): Promise<{ profile: UserProfile | undefined; buckets: DayBucket[]; copies: WindowCopies }> {
    return guarded(operation, userId, async () => {
      const items = await queryAll(operation, {
        ConsistentRead: true,
        KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :profile',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':from': { S: dayKey(fromDate) }, ':profile': { S: PROFILE_KEY } },
      });
      let profile: UserProfile | undefined;
      const dayItems = new Map<string, Item>();
      const segments: Segment[] = [];
      for (const item of items) {
        const sortKey = item[TABLE_KEYS.sortKey]?.S ?? '';
        if (sortKey === PROFILE_KEY) profile = profileOf(item, operation);
        else if (isSegmentKey(sortKey)) segments.push(segmentOf(item));
        else if (sortKey.startsWith(DAY_PREFIX)) dayItems.set(sortKey.slice(DAY_PREFIX.length), item);
      }
      // A segment's day counts from the segment unless its day item is still sealed (then the item holds it all);
      // a day item beside it holds what came after the roll-up (late events), which adds up.
      const readable = new Map(dayItems);
      const rolledDates = new Set<string>();
      for (const segment of segments) {
        for (const [date, values] of segment.days) {
          if (date < fromDate) continue;
          rolledDates.add(date);
          const dayItem = dayItems.get(date);
          if (dayItem?.[DAY_ATTRIBUTES.rollSeal] === undefined) readable.set(date, withSegmentValues(date, dayItem, values));
        }
      }
      const buckets: DayBucket[] = [];
      const copies = { lightKeys: {} as Record<string, string[]>, heavyDates: [] as string[] };
      for (const date of [...readable.keys()].sort()) {
        const item = readable.get(date)!;
        buckets.push(dayBucketOf(item));
        const keys = item[DAY_ATTRIBUTES.eventKeys]?.SS;
        if (item[DAY_ATTRIBUTES.heavy] !== undefined) {
          rememberHeavy(dayRef(userId, date));
          copies.heavyDates.push(date);
        } else {
          if (keys) copies.lightKeys[date] = keys;
          // A rolled day's keys live in its SEEN# guards, as a heavy day's do.
          if (rolledDates.has(date)) copies.heavyDates.push(date);
        }
      }
      const storedOverlayFrom = profile?.overlayFrom;
      if (profile) profile = await withOverlays(operation, profile, fromDate, dayItems, copies.heavyDates);
      if (operation === 'loadUser') {
        // The read above is complete and exact whatever the roll-up does: a roll-up that stops (throttled, or any
        // failure) is picked up by a later read, and must not fail the event that read for its decision.
        try {
          await rollUp(userId, fromDate, items, dayItems, segments, storedOverlayFrom);
        } catch (error) {
          options.onRollUpFailure?.(userId, error);
        }
      }
      return { profile, buckets, copies };
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Roll-up. A heavy user's window read is mostly per-item overhead (keys, TTL, attribute names), so the sealed heavy
  // days of each SEGMENT_DAYS-day period are moved into one segment item that keeps every day's values (a window
  // may start inside it). DynamoDB has no transactions here, so the move is a sequence of conditional writes, each
  // repeatable, that any window read can pick up again where a crash or a concurrent roll-up left it:
  //   seal    each day item: SET rs (under `hv = true` and no light keys, sends or string signals). While a day item is
  //           sealed, the reader counts the day item alone and ignores the segment's copy of the day.
  //   segment PutItem the segment (values as the window read them, each day sealed first) under attribute_not_exists;
  //           if one is there already, that one is the segment and this attempt stops.
  //   drain   each sealed day: REMOVE rs and take out exactly the segment's values for it (the counters and signal
  //           sets go whole when they are unchanged, else ADD the negated counters and DELETE the elements), remove
  //           the pending keys whose guard confirms them, and SET hv to the drain's day number. From then on the
  //           reader counts segment + day item: what is left in the day item (late events, an undo) adds up.
  //   delete  a drained item with nothing left goes once no guard of its events can still be alive (the guard
  //           horizon plus SQS redelivery), under `hv = <that day>` (any later heavy write sets hv back to true).
  // Until then the drained item stays (about 65 bytes), so that a write to that day still fails the light attempt
  // and meets the SEEN# guards. A day item that reappears after the delete (a late event, a send) is unsealed, so
  // it adds to the segment; a sealed day the segment does not hold (a crash before it) just counts as itself.
  // Only the decision's window read (loadUser) rolls up, and only when it is big, at most SEGMENTS_PER_READ
  // segments a read: a typical user never pays, a heavy one pays a few writes once per period.
  const rollUpReadBytes = options.rollUpReadBytes ?? DEFAULT_ROLL_UP_READ_BYTES;
  const tombstoneDays = dedupHorizonDays + REDELIVERY_DAYS;
  const epochDayNow = (): number => Math.floor(wallClock().getTime() / 86_400_000);

  async function rollUp(
    userId: string,
    fromDate: string,
    /** Everything the window read returned: its size decides whether a roll-up pays. */
    items: readonly Item[],
    dayItems: ReadonlyMap<string, Item>,
    segments: Segment[],
    /** The stored profile's overlayFrom: overlays on earlier days are folded (all of them when there is none). */
    overlayFrom: string | undefined,
  ): Promise<void> {
    // What an earlier attempt left: days still sealed under a stored segment.
    for (const segment of segments) {
      for (const [date, values] of segment.days) {
        const item = dayItems.get(date);
        if (item?.[DAY_ATTRIBUTES.rollSeal] !== undefined) await drainDay(userId, date, item, values);
      }
    }
    let deleted = 0;
    for (const [date, item] of dayItems) {
      if (deleted >= DRAINED_DELETED_PER_READ) break;
      if (await deleteDrained(userId, date, item)) deleted += 1;
    }
    // Only a day still heavy (`hv = true`) can be rolled up (rollableValues): without one, the read's size, which
    // costs a walk over every attribute of every item, is not worth computing on this per-event path.
    if (![...dayItems.values()].some((item) => item[DAY_ATTRIBUTES.heavy]?.BOOL === true)) return;
    if (items.reduce((sum, item) => sum + itemSizeBytes(item), 0) < rollUpReadBytes) return;
    const newest = [...dayItems.keys()].sort().at(-1)!;
    const stored = new Set(segments.map((segment) => segment.firstDate));
    const periods = new Map<string, Array<[string, Item, DayValues]>>();
    for (const [date, item] of dayItems) {
      const firstDate = segmentFirstDate(date);
      if (firstDate < fromDate || stored.has(firstDate) || addDays(firstDate, SEGMENT_DAYS - 1) > addDays(newest, -SEAL_LAG_DAYS)) continue;
      const values = rollableValues(item, overlayFrom === undefined || date < overlayFrom);
      if (values) periods.set(firstDate, [...(periods.get(firstDate) ?? []), [date, item, values]]);
    }
    let made = 0;
    for (const [firstDate, days] of [...periods].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (made >= SEGMENTS_PER_READ) break;
      if (days.length < MIN_SEGMENT_DAYS || !rollUpPays(userId, firstDate, days)) continue;
      await rollSegment(userId, firstDate, days);
      made += 1;
    }
  }

  /**
   * Whether the period reads smaller rolled up from the first read on: its segment and the drained items that stay
   * for a while against its day items as they are (small heavy days, with few signals, gain nothing until then).
   */
  function rollUpPays(userId: string, firstDate: string, days: Array<[string, Item, DayValues]>): boolean {
    const lastDate = addDays(firstDate, SEGMENT_DAYS - 1);
    const segment = segmentItemOf(userId, firstDate, new Map(days.map(([date, , values]) => [date, values])), Number(expiresAt(lastDate).N));
    const drained = days.reduce(
      (sum, [date]) =>
        sum +
        itemSizeBytes({
          ...dayItemKey(userId, date),
          [TABLE_KEYS.timeToLiveAttribute]: expiresAt(date),
          [DAY_ATTRIBUTES.heavy]: { N: String(epochDayNow()) },
        }),
      0,
    );
    return itemSizeBytes(segment) + drained < days.reduce((sum, [, item]) => sum + itemSizeBytes(item), 0);
  }

  /** A roll-up write under its condition: undefined when the condition fails (another attempt got there first). */
  function rollUpWrite<Output extends { ConsumedCapacity?: ConsumedCapacity }>(request: Promise<Output>): Promise<Output | undefined> {
    return unlessConditionFails(metered('rollUp', 'write', request));
  }

  async function rollSegment(userId: string, firstDate: string, days: Array<[string, Item, DayValues]>): Promise<void> {
    const sealed: Array<[string, Item, DayValues]> = [];
    for (const [date, item, values] of days) {
      if (item[DAY_ATTRIBUTES.rollSeal] === undefined) {
        options.onRollUpStep?.('seal', date);
        const written = await rollUpWrite(
          client.send(
            new UpdateItemCommand({
              ...common,
              Key: dayItemKey(userId, date),
              UpdateExpression: 'SET #rs = :true',
              ConditionExpression:
                '#hv = :true AND attribute_not_exists(#ids) AND attribute_not_exists(#sends) AND attribute_not_exists(#sendIds) AND attribute_not_exists(#sig)',
              ExpressionAttributeNames: {
                '#rs': DAY_ATTRIBUTES.rollSeal,
                '#hv': DAY_ATTRIBUTES.heavy,
                '#ids': DAY_ATTRIBUTES.eventKeys,
                '#sends': DAY_ATTRIBUTES.sends,
                '#sendIds': DAY_ATTRIBUTES.sendIds,
                '#sig': DAY_ATTRIBUTES.signals,
              },
              ExpressionAttributeValues: { ':true': { BOOL: true } },
            }),
          ),
        );
        // Changed since the read (a send, or drained by a concurrent roll-up): the day stays out of this segment.
        if (written === undefined) continue;
      }
      sealed.push([date, item, values]);
    }
    if (sealed.length === 0) return;
    const lastDate = addDays(firstDate, SEGMENT_DAYS - 1);
    const item = segmentItemOf(userId, firstDate, new Map(sealed.map(([date, , values]) => [date, values])), Number(expiresAt(lastDate).N));
    options.onRollUpStep?.('segment', lastDate);
    const put = await rollUpWrite(client.send(new PutItemCommand({ ...common, Item: item, ...ONLY_IF_NEW })));
    // Another roll-up stored this period's segment first: the next window read drains its days from that one.
    if (put === undefined) return;
    for (const [date, dayItem, values] of sealed) await drainDay(userId, date, dayItem, values);
  }

  /** The drain step: the segment's values for this day leave the sealed day item (see the roll-up above). */
  async function drainDay(userId: string, date: string, read: Item, values: DayValues): Promise<void> {
    // A pending key may go only once its guard confirms it: a crashed attempt's key is how its redelivery adopts it.
    const confirmed: string[] = [];
    for (const [name, attribute] of Object.entries(read)) {
      if (!name.startsWith(PENDING_PREFIX) || attribute.S === undefined) continue;
      const { Item: guard } = await metered(
        'rollUp',
        'read',
        client.send(
          new GetItemCommand({
            ...common,
            Key: guardKey(userId, name.slice(PENDING_PREFIX.length)),
            ConsistentRead: true,
            ProjectionExpression: '#token',
            ExpressionAttributeNames: { '#token': GUARD_ATTRIBUTES.token },
          }),
        ),
      );
      if (guard?.[GUARD_ATTRIBUTES.token]?.S === attribute.S) confirmed.push(name);
    }
    const names: Record<string, string> = { '#rs': DAY_ATTRIBUTES.rollSeal, '#hv': DAY_ATTRIBUTES.heavy };
    const shared: Item = { ':drained': { N: String(epochDayNow()) } };
    const pending = confirmed.flatMap((name, i) => {
      names[`#p${i}`] = name;
      names[`#u${i}`] = REPLACED_OVERLAY_PREFIX + name.slice(PENDING_PREFIX.length);
      return [`#p${i}`, `#u${i}`];
    });
    // Only a day whose overlay the profile has folded is rolled up (rollableValues): the overlay goes with the drain.
    if (read[DAY_ATTRIBUTES.overlay] !== undefined) {
      names['#ov'] = DAY_ATTRIBUTES.overlay;
      pending.push('#ov');
    }
    const counters = [...values.counters].map(([name, amount], i) => {
      names[`#c${i}`] = name;
      return { ref: `#c${i}`, value: `:c${i}`, amount };
    });
    const sets = [...values.signalSets].map(([name, elements], i) => {
      names[`#s${i}`] = name;
      return { ref: `#s${i}`, value: `:s${i}`, elements };
    });
    const key = dayItemKey(userId, date);
    options.onRollUpStep?.('drain', date);
    // Unchanged since the segment was made (the usual case): its counters and sets go whole, leaving a small item.
    const whole = await rollUpWrite(
      client.send(
        new UpdateItemCommand({
          ...common,
          Key: key,
          UpdateExpression: `REMOVE ${['#rs', ...counters.map((c) => c.ref), ...sets.map((s) => s.ref), ...pending].join(', ')} SET #hv = :drained`,
          // Sets only grow between the read and now, so an unchanged size is an unchanged set.
          ConditionExpression: [
            'attribute_exists(#rs)',
            ...counters.map((c) => `${c.ref} = ${c.value}`),
            ...sets.map((s) => `size(${s.ref}) = ${s.value}n`),
          ].join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: {
            ...shared,
            ...Object.fromEntries(counters.map((c) => [c.value, { N: c.amount }])),
            ...Object.fromEntries(sets.map((s) => [`${s.value}n`, { N: String(s.elements.length) }])),
          },
        }),
      ),
    );
    if (whole !== undefined) return;
    // Late events came in between: take out exactly the segment's values and leave theirs.
    const additions = counters.map((c) => `${c.ref} ${c.value}`);
    const deletions = sets.map((s) => `${s.ref} ${s.value}`);
    await rollUpWrite(
      client.send(
        new UpdateItemCommand({
          ...common,
          Key: key,
          UpdateExpression:
            (additions.length > 0 ? `ADD ${additions.join(', ')} ` : '') +
            (deletions.length > 0 ? `DELETE ${deletions.join(', ')} ` : '') +
            `REMOVE ${['#rs', ...pending].join(', ')} SET #hv = :drained`,
          // Drained already (a concurrent roll-up): nothing to do.
          ConditionExpression: 'attribute_exists(#rs)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: {
            ...shared,
            ...Object.fromEntries(counters.map((c) => [c.value, { N: negated(c.amount) }])),
            ...Object.fromEntries(sets.map((s) => [s.value, { BS: s.elements }])),
          },
        }),
      ),
    );
  }

  /** The delete step: a drained day item with nothing left, once no guard of its events can be alive. */
  async function deleteDrained(userId: string, date: string, item: Item): Promise<boolean> {
    const drainedOn = item[DAY_ATTRIBUTES.heavy]?.N;
    if (drainedOn === undefined || epochDayNow() - Number(drainedOn) <= tombstoneDays) return false;
    const names: Record<string, string> = { '#hv': DAY_ATTRIBUTES.heavy };
    const conditions = ['#hv = :drained'];
    for (const [name, attribute] of Object.entries(item)) {
      if (name === TABLE_KEYS.partitionKey || name === TABLE_KEYS.sortKey || name === TABLE_KEYS.timeToLiveAttribute) continue;
      if (name === DAY_ATTRIBUTES.heavy) continue;
      // Counters left at zero by a drain may go; anything else keeps the item.
      if (attribute.N !== Number(0).toString() || NON_COUNTER_ATTRIBUTES.has(name)) return false;
      names[`#z${conditions.length}`] = name;
      conditions.push(`#z${conditions.length} = :zero`);
    }
    for (const name of [DAY_ATTRIBUTES.eventKeys, DAY_ATTRIBUTES.sends, DAY_ATTRIBUTES.sendIds, DAY_ATTRIBUTES.signals, DAY_ATTRIBUTES.rollSeal]) {
      names[`#n${conditions.length}`] = name;
      conditions.push(`attribute_not_exists(#n${conditions.length})`);
    }
    options.onRollUpStep?.('delete', date);
    const deleted = await rollUpWrite(
      client.send(
        new DeleteItemCommand({
          ...common,
          Key: dayItemKey(userId, date),
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: {
            ':drained': { N: drainedOn },
            ...(conditions.some((c) => c.endsWith(':zero')) ? { ':zero': { N: '0' } } : {}),
          },
        }),
      ),
    );
    return deleted !== undefined;
  }

  const dayItemKey = (userId: string, date: string): Item => ({
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: dayKey(date) },
  });
  /** The TTL attribute: the day item outlives every window that can still count it. */
  const expiresAt = (date: string): AttributeValue => ({ N: String(startOfLocalDay(addDays(date, retentionDays), timeZone)) });

  const reviewPartitionOf = (userId: string, date: string): string => reviewPartition(date, reviewShard(userId, shardCount));

  // -------------------------------------------------------------------------------------------------------------
  // The day-item writes of one event (light and heavy days; the protocol is described at the top of this file).
  // `strata import` reuses recordEvent for batch writes, so this is the one place that writes event counters.

  const heavyDays = new Set<string>();
  /** Per heavy day, the keys whose SEEN# guard this store wrote: their p_ entries go with its next write there. */
  const confirmedKeys = new Map<string, string[]>();
  const dayRef = (userId: string, date: string): string => `${userId}\u0000${date}`;

  function rememberHeavy(ref: string): void {
    if (heavyDays.has(ref)) return;
    if (heavyDays.size >= HEAVY_DAYS_REMEMBERED) {
      const oldest = heavyDays.values().next().value as string;
      heavyDays.delete(oldest);
      confirmedKeys.delete(oldest);
    }
    heavyDays.add(ref);
  }

  /** Per user, the days on which this store confirmed keys whose p_ entries are still there (see closeEarlierDays). */
  const openDaysByUser = new Map<string, Set<string>>();

  function confirmKey(userId: string, date: string, eventKey: string): void {
    const ref = dayRef(userId, date);
    if (!confirmedKeys.get(ref)?.includes(eventKey)) confirmedKeys.set(ref, [...(confirmedKeys.get(ref) ?? []), eventKey]);
    let days = openDaysByUser.get(userId);
    if (!days) {
      if (openDaysByUser.size >= HEAVY_DAYS_REMEMBERED) openDaysByUser.delete(openDaysByUser.keys().next().value as string);
      days = new Set();
      openDaysByUser.set(userId, days);
    }
    days.add(date);
  }

  /**
   * A write to a later date closes this store's earlier heavy days of the user: the p_ entries it confirmed there
   * (W2 done, so removable at any time) go in one write per day, rather than waiting for a next write to that day
   * that may never come; otherwise every finished day would keep its last pending markers, and every window read
   * would pay for them. A day with only a few is closed two days on, when the writes still in flight at its end have
   * confirmed too, so that each day costs about one extra write, never one per event; at most two days per event.
   */
  async function closeEarlierDays(userId: string, date: string): Promise<void> {
    const days = openDaysByUser.get(userId);
    if (!days) return;
    let closed = 0;
    for (const earlier of [...days].sort()) {
      if (earlier >= date || closed >= DAYS_CLOSED_PER_WRITE) break;
      const ref = dayRef(userId, earlier);
      const keys = [...new Set(confirmedKeys.get(ref))];
      if (keys.length === 0) {
        days.delete(earlier);
        continue;
      }
      if (keys.length < CLOSE_AT_ONCE_KEYS && earlier > addDays(date, -2)) continue;
      const removed = keys.slice(0, CLOSING_REMOVALS_PER_WRITE);
      const names: Record<string, string> = { '#pk': TABLE_KEYS.partitionKey };
      const removals = pendingRemovals(removed, names);
      await unlessConditionFails(
        metered(
          'recordEvent',
          'write',
          client.send(
            new UpdateItemCommand({
              ...common,
              Key: dayItemKey(userId, earlier),
              UpdateExpression: `REMOVE ${removals.join(', ')}`,
              // An expired day item is not brought back as keys alone.
              ConditionExpression: 'attribute_exists(#pk)',
              ExpressionAttributeNames: names,
            }),
          ),
        ),
      );
      closed += 1;
      const left = (confirmedKeys.get(ref) ?? []).filter((key) => !removed.includes(key));
      confirmedKeys.set(ref, left);
      if (left.length === 0) days.delete(earlier);
    }
  }

  /** The ADD clauses of an increment; negated for an undo, which leaves signals (a set may share them). */
  function incrementClauses(increment: DayIncrement, sign: 1 | -1, names: Record<string, string>, values: Item): string[] {
    const additions = Object.entries(increment.counters).map(([counterId, amount], i) => {
      names[`#c${i}`] = counterAttributeName(counterId);
      values[`:c${i}`] = toAttribute(sign * amount + 0, counterId)!;
      return `#c${i} :c${i}`;
    });
    if (sign === 1) additions.push(...signalClauses(increment.date, increment.signals, names, values));
    return additions;
  }

  /** The ADD clauses of signals: into their filters' binary sets (a string set for any with no such form). */
  function signalClauses(date: string, signals: readonly string[], names: Record<string, string>, values: Item): string[] {
    if (signals.length === 0) return [];
    const { byAttribute, strings } = signalSetAttributes(date, signals);
    const clauses = [...byAttribute].map(([name, elements], i) => {
      names[`#s${i}`] = name;
      values[`:s${i}`] = { BS: elements };
      return `#s${i} :s${i}`;
    });
    if (strings.length > 0) {
      names['#sig'] = DAY_ATTRIBUTES.signals;
      values[':sig'] = { SS: strings };
      clauses.push('#sig :sig');
    }
    return clauses;
  }

  /** A heavy day's increment: its signals coarsened to the hour (one byte each in their filters' sets). */
  const coarsened = (increment: DayIncrement): DayIncrement => ({
    ...increment,
    signals: increment.signals.map((signal) => coarsenSignal(signal, HEAVY_DAY_SIGNAL_SECONDS)),
  });

  /**
   * A conditional write: applied, or the item as it was when the condition failed. DynamoDB returns that item with
   * the failure (ReturnValuesOnConditionCheckFailure); dynalite does not, so it is read back there.
   */
  async function conditionalWrite(
    operation: StoreOperation,
    key: Item,
    send: () => Promise<{ ConsumedCapacity?: ConsumedCapacity }>,
  ): Promise<{ applied: true } | { applied: false; old: Item | undefined }> {
    try {
      await metered(operation, 'write', send());
      return { applied: true };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const returned = (error as { Item?: Item }).Item;
      if (returned) return { applied: false, old: returned };
      const { Item: old } = await metered(operation, 'read', client.send(new GetItemCommand({ ...common, Key: key, ConsistentRead: true })));
      return { applied: false, old };
    }
  }

  const updateDay = (input: Omit<UpdateItemCommandInput, 'TableName'>) => () =>
    client.send(new UpdateItemCommand({ ...common, ReturnValuesOnConditionCheckFailure: 'ALL_OLD', ...input }));

  /** One UpdateItem: counters and key together, while the day is light and has room. */
  async function lightWrite(
    userId: string,
    eventKey: string,
    increment: DayIncrement,
  ): Promise<{ outcome: 'applied' | 'duplicate' | 'heavy'; keysToMove?: string[] }> {
    const names: Record<string, string> = {
      '#ids': DAY_ATTRIBUTES.eventKeys,
      '#hv': DAY_ATTRIBUTES.heavy,
      '#expiresAt': TABLE_KEYS.timeToLiveAttribute,
    };
    const values: Item = {
      ':key': { S: eventKey },
      ':keys': { SS: [eventKey] },
      ':limit': { N: String(lightDayEvents) },
      ':expiresAt': expiresAt(increment.date),
    };
    const additions = ['#ids :keys', ...incrementClauses(increment, 1, names, values)];
    const key = dayItemKey(userId, increment.date);
    const result = await conditionalWrite(
      'recordEvent',
      key,
      updateDay({
        Key: key,
        UpdateExpression: `ADD ${additions.join(', ')} SET #expiresAt = :expiresAt`,
        ConditionExpression: 'NOT contains(#ids, :key) AND attribute_not_exists(#hv) AND (attribute_not_exists(#ids) OR size(#ids) < :limit)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
    if (result.applied) return { outcome: 'applied' };
    const keys = result.old?.[DAY_ATTRIBUTES.eventKeys]?.SS;
    if (keys?.includes(eventKey)) return { outcome: 'duplicate' };
    // Full, or already heavy. A full light day's keys are final (no light write can add one), so they can move.
    return keys && result.old?.[DAY_ATTRIBUTES.heavy] === undefined ? { outcome: 'heavy', keysToMove: keys } : { outcome: 'heavy' };
  }

  function putGuard(userId: string, eventKey: string, token: string, date: string, settled = false) {
    const key = guardKey(userId, eventKey);
    const guardExpiresAt = Math.floor(wallClock().getTime() / 1000) + dedupHorizonDays * 86_400;
    const input: PutItemCommandInput = {
      ...common,
      Item: guardItemOf(userId, eventKey, token, date, guardExpiresAt, settled),
      ...ONLY_IF_NEW,
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    };
    return conditionalWrite('guardEvent', key, () => client.send(new PutItemCommand(input)));
  }

  /**
   * A full light day turns heavy: its keys get SEEN# guards first, then leave the day item, so that a redelivery
   * of one of them is still caught (by W2) once they are gone. Repeatable after a crash at any point.
   */
  async function turnHeavy(userId: string, date: string, keys: string[]): Promise<void> {
    await Promise.all(keys.map((eventKey) => putGuard(userId, eventKey, LIGHT_TOKEN, date)));
    const key = dayItemKey(userId, date);
    await conditionalWrite(
      'recordEvent',
      key,
      updateDay({
        Key: key,
        UpdateExpression: 'REMOVE #ids SET #hv = :true',
        ConditionExpression: 'attribute_exists(#ids)',
        ExpressionAttributeNames: { '#ids': DAY_ATTRIBUTES.eventKeys, '#hv': DAY_ATTRIBUTES.heavy },
        ExpressionAttributeValues: { ':true': { BOOL: true } },
        ReturnValuesOnConditionCheckFailure: 'NONE',
      }),
    );
  }

  const guardKey = (userId: string, eventKey: string): Item => ({
    [TABLE_KEYS.partitionKey]: { S: userKey(userId) },
    [TABLE_KEYS.sortKey]: { S: seenKey(eventKey) },
  });

  /**
   * Takes a copy of the event back out of a day, if one is there under a token other than the guard's: its counters,
   * and the overlay it wrote, which goes back to the one it replaced (kept in its u_ entry). No other writer can have
   * replaced that overlay since: a pending writer's overlay is replaced only by one that knows its guard, which a
   * stray never gets. Repeatable: the condition on the token makes a second undo change nothing.
   */
  async function undoStrayCopy(userId: string, eventKey: string, increment: DayIncrement, guardToken: string | undefined): Promise<void> {
    const key = dayItemKey(userId, increment.date);
    const pendingName = PENDING_PREFIX + eventKey;
    const replacedName = REPLACED_OVERLAY_PREFIX + eventKey;
    // Twice at most: a second round only when the overlay changed between the read and the write.
    for (let round = 0; round < 2; round++) {
      const { Item: day } = await metered(
        'recordEvent',
        'read',
        client.send(
          new GetItemCommand({
            ...common,
            Key: key,
            ConsistentRead: true,
            ProjectionExpression: '#p, #u, #ov',
            ExpressionAttributeNames: { '#p': pendingName, '#u': replacedName, '#ov': DAY_ATTRIBUTES.overlay },
          }),
        ),
      );
      const stray = day?.[pendingName]?.S;
      if (stray === undefined || stray === guardToken) return;
      const names: Record<string, string> = { '#p': pendingName, '#u': replacedName };
      const values: Item = { ':token': { S: stray } };
      const subtractions = incrementClauses(increment, -1, names, values);
      const removals = ['#p', '#u'];
      let conditions = '#p = :token';
      let restore = '';
      const overlayNow = day?.[DAY_ATTRIBUTES.overlay]?.S;
      const replaced = day?.[replacedName]?.S ?? '';
      const restoring = decodeOverlay(overlayNow)?.holder === eventKey;
      if (restoring) {
        names['#ov'] = DAY_ATTRIBUTES.overlay;
        values[':ovNow'] = { S: overlayNow! };
        conditions += ' AND #ov = :ovNow';
        if (replaced) {
          values[':replaced'] = { S: replaced };
          restore = ' SET #ov = :replaced';
        } else removals.push('#ov');
      }
      const undone = await conditionalWrite(
        'recordEvent',
        key,
        updateDay({
          Key: key,
          UpdateExpression: (subtractions.length > 0 ? `ADD ${subtractions.join(', ')} ` : '') + `REMOVE ${removals.join(', ')}${restore}`,
          ConditionExpression: conditions,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'NONE',
        }),
      );
      if (undone.applied) {
        if (restoring) remember(dayOverlays, dayRef(userId, increment.date), replaced);
        return;
      }
    }
  }

  const appliedOnOf = (guard: Item | undefined): { duplicate: true; appliedOn?: string } => {
    const date = guard?.[GUARD_ATTRIBUTES.date]?.S;
    return date === undefined ? { duplicate: true } : { duplicate: true, appliedOn: date };
  };

  /** W1 and W2 of a heavy day, with the adoption and undo cases spelled out at the top of this file. */
  async function heavyWrite(userId: string, eventKey: string, increment: DayIncrement): Promise<{ duplicate: boolean; appliedOn?: string }> {
    const ref = dayRef(userId, increment.date);
    const key = dayItemKey(userId, increment.date);
    const pendingName = PENDING_PREFIX + eventKey;
    // A guard already there means the event is applied (on its own day): report a duplicate before W1 rather than
    // undo after it, so that no reader ever sees the copy in between. Only a crashed attempt of this copy can have
    // left counters here, and those go. An eventually consistent read that misses a fresh guard is caught by W2.
    const { Item: existingGuard } = await metered(
      'guardEvent',
      'read',
      client.send(new GetItemCommand({ ...common, Key: guardKey(userId, eventKey) })),
    );
    if (existingGuard) {
      await undoStrayCopy(userId, eventKey, increment, existingGuard[GUARD_ATTRIBUTES.token]?.S);
      return appliedOnOf(existingGuard);
    }
    // The event's attribute changes ride in W1 as the day's overlay when the profile's lease allows it.
    let withOverlay = increment.attributes !== undefined && overlayAllowed(userId, increment.date);
    // A few rounds at most: a round only repeats when a pending entry vanished between a failure and its read, or
    // when the overlay there was not the one expected.
    for (let round = 0; round < 4; round++) {
      let token = randomUUID().replace(/-/g, '').slice(0, 12);
      const confirmed = [...new Set(confirmedKeys.get(ref))].filter((k) => k !== eventKey).slice(0, PENDING_REMOVALS_PER_WRITE);
      const names: Record<string, string> = {
        '#p': pendingName,
        '#ids': DAY_ATTRIBUTES.eventKeys,
        '#hv': DAY_ATTRIBUTES.heavy,
        '#expiresAt': TABLE_KEYS.timeToLiveAttribute,
      };
      const values: Item = { ':token': { S: token }, ':key': { S: eventKey }, ':true': { BOOL: true }, ':expiresAt': expiresAt(increment.date) };
      const removals = pendingRemovals(confirmed, names);
      const additions = incrementClauses(coarsened(increment), 1, names, values);
      const overlay = withOverlay ? overlayWrite(ref, eventKey, increment.attributes!, names, values) : undefined;
      const w1 = await conditionalWrite(
        'recordEvent',
        key,
        updateDay({
          Key: key,
          UpdateExpression:
            (additions.length > 0 ? `ADD ${additions.join(', ')} ` : '') +
            'SET #p = :token, #hv = :true, #expiresAt = :expiresAt' +
            (overlay ? `, ${overlay.set}` : '') +
            (removals.length > 0 ? ` REMOVE ${removals.join(', ')}` : ''),
          ConditionExpression: 'attribute_not_exists(#p) AND NOT contains(#ids, :key)' + (overlay ? ` AND ${overlay.condition}` : ''),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      let adopted = false;
      if (w1.applied) {
        confirmedKeys.set(
          ref,
          (confirmedKeys.get(ref) ?? []).filter((k) => !confirmed.includes(k)),
        );
        for (const removed of confirmed) confirmedTokens.delete(keyRef(ref, removed));
        if (overlay) remember(dayOverlays, ref, overlay.text);
      } else {
        if (w1.old?.[DAY_ATTRIBUTES.eventKeys]?.SS?.includes(eventKey)) return { duplicate: true };
        const pendingToken = w1.old?.[pendingName]?.S;
        if (pendingToken === undefined) {
          // Refused by the overlay's condition: expect what is there, or leave the change to the profile write.
          if (overlay) withOverlay = learnOverlay(ref, w1.old);
          continue;
        }
        token = pendingToken;
        adopted = true;
      }
      const w2 = await putGuard(userId, eventKey, token, increment.date);
      if (!w2.applied && w2.old === undefined) continue;
      if (w2.applied || w2.old?.[GUARD_ATTRIBUTES.token]?.S === token) {
        rememberHeavy(ref);
        confirmKey(userId, increment.date, eventKey);
        remember(confirmedTokens, keyRef(ref, eventKey), token);
        return { duplicate: adopted };
      }
      // Applied before under another token: take this day's copy back out.
      await undoStrayCopy(userId, eventKey, increment, w2.old?.[GUARD_ATTRIBUTES.token]?.S);
      return appliedOnOf(w2.old);
    }
    throw new StoreError('recordEvent', `the guard of event key ${eventKey} for ${userRef(userId)} kept changing; the event will be retried`);
  }

  /**
   * Which copy counts, decided on the key's guard: the first claim wins, and a guard left by a heavy copy (W2) or by
   * a day that turned heavy is settled as it stands, except that a heavy copy which found a light copy elsewhere
   * re-points its own unsettled guard to it (that light copy was applied first and wrote no guard). Every step is a
   * conditional write on the one guard item, so concurrent settles of two copies agree on one date.
   */
  async function settledDate(userId: string, eventKey: string, ownDate: string, copy: { on: 'light' | 'heavy'; claim: string }): Promise<string> {
    const key = guardKey(userId, eventKey);
    for (let round = 0; round < 4; round++) {
      const claimed = await putGuard(userId, eventKey, LIGHT_TOKEN, copy.claim, true);
      if (claimed.applied) return copy.claim;
      const guard = claimed.old;
      const named = guard?.[GUARD_ATTRIBUTES.date]?.S;
      const token = guard?.[GUARD_ATTRIBUTES.token]?.S;
      if (named === undefined || token === undefined) continue; // expired between the put and its read
      if (guard?.[GUARD_ATTRIBUTES.settled]?.BOOL) return named;
      const repoint = copy.on === 'heavy' && named === ownDate && copy.claim !== ownDate;
      const settle = await conditionalWrite('guardEvent', key, () =>
        client.send(
          new UpdateItemCommand({
            ...common,
            Key: key,
            UpdateExpression: repoint ? 'SET #settled = :true, #date = :claim, #token = :light' : 'SET #settled = :true',
            ConditionExpression: 'attribute_not_exists(#settled) AND #date = :named AND #token = :token',
            ExpressionAttributeNames: { '#settled': GUARD_ATTRIBUTES.settled, '#date': GUARD_ATTRIBUTES.date, '#token': GUARD_ATTRIBUTES.token },
            ExpressionAttributeValues: {
              ':true': { BOOL: true },
              ':named': { S: named },
              ':token': { S: token },
              ...(repoint ? { ':claim': { S: copy.claim }, ':light': { S: LIGHT_TOKEN } } : {}),
            },
            ReturnValuesOnConditionCheckFailure: 'NONE',
          }),
        ),
      );
      if (settle.applied) return repoint ? copy.claim : named;
    }
    throw new StoreError('settleCopy', `the guard of event key ${eventKey} for ${userRef(userId)} kept changing; the event will be retried`);
  }

  /** Takes a light day's copy of an event back out (its key and counters); nothing if it is not there. */
  async function undoLightCopy(userId: string, eventKey: string, increment: DayIncrement): Promise<void> {
    const key = dayItemKey(userId, increment.date);
    const names: Record<string, string> = { '#ids': DAY_ATTRIBUTES.eventKeys };
    const values: Item = { ':key': { S: eventKey }, ':keys': { SS: [eventKey] } };
    const subtractions = incrementClauses(increment, -1, names, values);
    await conditionalWrite(
      'settleCopy',
      key,
      updateDay({
        Key: key,
        UpdateExpression: (subtractions.length > 0 ? `ADD ${subtractions.join(', ')} ` : '') + 'DELETE #ids :keys',
        ConditionExpression: 'contains(#ids, :key)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: 'NONE',
      }),
    );
  }

  // -------------------------------------------------------------------------------------------------------------
  // Attribute overlay (the protocol is described at the top of this file).

  /** Per user, the overlay lease of the stored profile as this store last read or wrote it. */
  const overlayLeases = new Map<string, { from: string; until: string }>();
  /** Per heavy day, the overlay text this store last saw there ('' for none): what W1 expects to replace. */
  const dayOverlays = new Map<string, string>();
  /** Per heavy day and event key, the token its SEEN# guard holds, when this store wrote or read it. */
  const confirmedTokens = new Map<string, string>();
  const keyRef = (ref: string, eventKey: string): string => `${ref}\u0000${eventKey}`;
  const today = (): string => localDate(wallClock(), timeZone);

  function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
    if (!map.has(key) && map.size >= HEAVY_DAYS_REMEMBERED) map.delete(map.keys().next().value as K);
    map.set(key, value);
  }

  function rememberLease(profile: UserProfile): void {
    const { userId, overlayFrom, overlayUntil } = profile;
    if (overlayFrom !== undefined && overlayUntil !== undefined) remember(overlayLeases, userId, { from: overlayFrom, until: overlayUntil });
    else overlayLeases.delete(userId);
  }

  /**
   * Whether an event of `date` may write the overlay: the stored profile (as last read or written here) holds a lease
   * that readers follow, the date is recent, and the lease has not reached its last days.
   */
  function overlayAllowed(userId: string, date: string): boolean {
    const lease = overlayLeases.get(userId);
    if (!lease) return false;
    const now = today();
    return date >= lease.from && date >= addDays(now, -OVERLAY_RECENT_DAYS) && now <= addDays(lease.until, -OVERLAY_WRITE_MARGIN_DAYS);
  }

  /**
   * The SET clauses and condition that put this event's contribution into the day's overlay, replacing the overlay
   * this store expects there; undefined when the join adds nothing to it. A pending writer's overlay is replaced only
   * when this store knows that writer's guard holds its token, so that an overlay put back by an undo is always one
   * whose writers count.
   */
  function overlayWrite(
    ref: string,
    eventKey: string,
    contribution: Record<string, StoredAttribute>,
    names: Record<string, string>,
    values: Item,
  ): { set: string; condition: string; text: string } | undefined {
    const current = dayOverlays.get(ref) ?? '';
    const expected = decodeOverlay(current);
    const joined = joinAttributes(expected?.attributes ?? {}, contribution);
    if (expected && joined === expected.attributes) return undefined;
    const text = encodeOverlay({ holder: eventKey, attributes: joined });
    names['#ov'] = DAY_ATTRIBUTES.overlay;
    names['#u'] = REPLACED_OVERLAY_PREFIX + eventKey;
    values[':ov'] = { S: text };
    values[':replaced'] = { S: current };
    if (!expected) return { set: '#ov = :ov, #u = :replaced', condition: 'attribute_not_exists(#ov)', text };
    names['#holder'] = PENDING_PREFIX + expected.holder;
    const known = confirmedTokens.get(keyRef(ref, expected.holder));
    if (known !== undefined) values[':holderToken'] = { S: known };
    const holderDone = known !== undefined ? '(attribute_not_exists(#holder) OR #holder = :holderToken)' : 'attribute_not_exists(#holder)';
    return { set: '#ov = :ov, #u = :replaced', condition: `#ov = :replaced AND ${holderDone}`, text };
  }

  /**
   * After W1 was refused with the item as it was: the overlay there is what to expect next time. Returns whether a
   * retry may still write the overlay (its holder is not pending, or known to count).
   */
  function learnOverlay(ref: string, old: Item | undefined): boolean {
    const text = old?.[DAY_ATTRIBUTES.overlay]?.S ?? '';
    remember(dayOverlays, ref, text);
    const holder = decodeOverlay(text)?.holder;
    if (holder === undefined) return true;
    const pending = old?.[PENDING_PREFIX + holder]?.S;
    return pending === undefined || confirmedTokens.get(keyRef(ref, holder)) === pending;
  }

  /**
   * A day's overlay as it counts: whole when its holder is not pending or its guard holds the holder's token; else
   * the overlay the holder replaced (its writers count), and `unresolved` while the holder has no guard yet (in
   * flight, or crashed before W2: its redelivery finishes it).
   */
  async function countedOverlay(
    operation: StoreOperation,
    userId: string,
    date: string,
    item: Item,
    overlay: Overlay,
  ): Promise<{ attributes: Record<string, StoredAttribute>; unresolved?: true }> {
    const token = item[PENDING_PREFIX + overlay.holder]?.S;
    if (token === undefined) return { attributes: overlay.attributes };
    const ref = keyRef(dayRef(userId, date), overlay.holder);
    if (confirmedTokens.get(ref) === token) return { attributes: overlay.attributes };
    const { Item: guard } = await metered(
      operation,
      'read',
      client.send(
        new GetItemCommand({
          ...common,
          Key: guardKey(userId, overlay.holder),
          ConsistentRead: true,
          ProjectionExpression: '#token',
          ExpressionAttributeNames: { '#token': GUARD_ATTRIBUTES.token },
        }),
      ),
    );
    const guardToken = guard?.[GUARD_ATTRIBUTES.token]?.S;
    if (guardToken === token) {
      remember(confirmedTokens, ref, token);
      return { attributes: overlay.attributes };
    }
    const replaced = decodeOverlay(item[REPLACED_OVERLAY_PREFIX + overlay.holder]?.S)?.attributes ?? {};
    return guardToken === undefined ? { attributes: replaced, unresolved: true } : { attributes: replaced };
  }

  /** Day items of the user from `from` to `to`, for the overlays a window read that starts later does not see. */
  async function overlayDays(operation: StoreOperation, userId: string, from: string, to: string): Promise<Map<string, Item>> {
    const items = await queryAll(operation, {
      ConsistentRead: true,
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':from': { S: dayKey(from) }, ':to': { S: dayKey(to) } },
    });
    const days = new Map<string, Item>();
    for (const item of items) {
      const sortKey = item[TABLE_KEYS.sortKey]?.S ?? '';
      if (sortKey.startsWith(DAY_PREFIX) && !isSegmentKey(sortKey)) days.set(sortKey.slice(DAY_PREFIX.length), item);
    }
    return days;
  }

  /**
   * The profile as it counts: the stored one joined with the overlays of its days from `overlayFrom` on (read further
   * back than the window when it must), with the overlay fields a save of it may store: `overlayFrom` advanced past
   * what is folded (never past an unresolved overlay, nor past the days events may still write), the lease extended
   * while the user has a heavy day today or yesterday, and both cleared once the lease is over and nothing is left.
   */
  async function withOverlays(
    operation: StoreOperation,
    stored: UserProfile,
    fromDate: string,
    dayItems: ReadonlyMap<string, Item>,
    heavyDates: readonly string[],
  ): Promise<UserProfile> {
    const { userId } = stored;
    rememberLease(stored);
    const now = today();
    const from = stored.overlayFrom;
    let attributes = stored.attributes;
    let unresolved: string | undefined;
    if (from !== undefined) {
      const earlier = from < fromDate ? await overlayDays(operation, userId, from, addDays(fromDate, -1)) : undefined;
      for (const [date, item] of [...(earlier ?? []), ...dayItems]) {
        if (date < from) continue;
        const text = item[DAY_ATTRIBUTES.overlay]?.S;
        const overlay = decodeOverlay(text);
        if (!overlay) continue;
        remember(dayOverlays, dayRef(userId, date), text!);
        const counted = await countedOverlay(operation, userId, date, item, overlay);
        // A holder SQS can no longer redeliver does not hold overlayFrom back: if it is ever redriven, its own
        // decision reads past it, finds its changes missing and writes them to the profile.
        if (counted.unresolved && date >= addDays(now, -REDELIVERY_DAYS)) unresolved = minDate(unresolved, date);
        attributes = joinAttributes(attributes, counted.attributes);
      }
    }
    const recent = addDays(now, -OVERLAY_RECENT_DAYS);
    const heavyRecently = heavyDates.some((date) => date >= recent) || heavyDays.has(dayRef(userId, now)) || heavyDays.has(dayRef(userId, recent));
    // Events write overlays only from yesterday on (by their clock), so a fold may move overlayFrom up to the day before.
    const folded = minDate(addDays(now, -OVERLAY_FOLD_LAG_DAYS), unresolved)!;
    let overlayFrom: string | undefined;
    let overlayUntil: string | undefined;
    if (heavyRecently) {
      overlayFrom = from === undefined ? folded : laterDate(from, folded);
      const extended = addDays(now, OVERLAY_LEASE_DAYS);
      overlayUntil = stored.overlayUntil === undefined ? extended : laterDate(stored.overlayUntil, extended);
    } else if (from !== undefined) {
      const over = stored.overlayUntil === undefined || now >= stored.overlayUntil;
      // Over, and nothing left to fold: no event may write the overlay any more, so readers need not look for it.
      if (!over || unresolved !== undefined) {
        overlayFrom = laterDate(from, folded);
        overlayUntil = over ? addDays(now, 1) : stored.overlayUntil;
      }
    }
    if (attributes === stored.attributes && overlayFrom === from && overlayUntil === stored.overlayUntil) return stored;
    const { overlayFrom: _from, overlayUntil: _until, ...rest } = stored;
    return {
      ...rest,
      attributes,
      ...(overlayFrom !== undefined ? { overlayFrom } : {}),
      ...(overlayUntil !== undefined ? { overlayUntil } : {}),
    };
  }

  // The re-judge run's checkpoint items (one per ruleset version and Scan segment) live beside the review's.
  const systemKey = (sortKey: string): Item => ({ [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: sortKey } });
  async function readSystemItem(sortKey: string): Promise<Item | undefined> {
    const { Item: item } = await metered(
      'rejudgeCheckpoint',
      'read',
      client.send(new GetItemCommand({ ...common, Key: systemKey(sortKey), ConsistentRead: true })),
    );
    return item;
  }
  async function writeSystemItem(sortKey: string, fields: Record<string, unknown>): Promise<void> {
    await metered('rejudgeCheckpoint', 'write', client.send(new PutItemCommand({ ...common, Item: { ...toItem(fields), ...systemKey(sortKey) } })));
  }

  return {
    recordEvent(userId, eventKey, increment: DayIncrement) {
      return guarded('recordEvent', userId, async () => {
        const ref = dayRef(userId, increment.date);
        await closeEarlierDays(userId, increment.date);
        // lightDayEvents 0: every day is heavy, so every event has a SEEN# guard (2 WRU, duplicates caught across days).
        if (lightDayEvents > 0 && !heavyDays.has(ref)) {
          const light = await lightWrite(userId, eventKey, increment);
          if (light.outcome !== 'heavy') return { duplicate: light.outcome === 'duplicate' };
          rememberHeavy(ref);
          if (light.keysToMove) await turnHeavy(userId, increment.date, light.keysToMove);
        }
        return heavyWrite(userId, eventKey, increment);
      });
    },

    settleCopy(userId, eventKey, increment, copy) {
      return guarded('settleCopy', userId, async () => {
        // Only heavy days nearby: a consistent read of the guard is enough (no write). No guard means no heavy copy
        // has reached W2; one that does later reads the window after it, finds this light copy and yields to it.
        if (copy.on === 'light' && copy.claim === increment.date) {
          const { Item: guard } = await metered(
            'settleCopy',
            'read',
            client.send(new GetItemCommand({ ...common, Key: guardKey(userId, eventKey), ConsistentRead: true })),
          );
          if (guard === undefined) return increment.date;
        }
        const countsOn = await settledDate(userId, eventKey, increment.date, copy);
        if (countsOn === increment.date) return countsOn;
        if (copy.on === 'light') await undoLightCopy(userId, eventKey, increment);
        // The guard now names another date, with a token no heavy attempt has: this day's copy is a stray.
        else await undoStrayCopy(userId, eventKey, increment, LIGHT_TOKEN);
        return countsOn;
      });
    },

    loadUser(userId, fromDate) {
      return loadWindow('loadUser', userId, fromDate);
    },

    async loadUserForJourney(userId, sinceDate) {
      const { profile, buckets } = await loadWindow('loadUserForJourney', userId, sinceDate);
      return { profile, buckets };
    },

    saveProfile(profile, expectedVersion) {
      return guarded('saveProfile', profile.userId, async () => {
        const item = profileItemOf(profile, expectedVersion + 1, shardCount);
        const written = await unlessConditionFails(
          metered(
            'saveProfile',
            'write',
            client.send(
              new PutItemCommand({
                ...common,
                Item: item,
                ...(expectedVersion === 0
                  ? ONLY_IF_NEW
                  : {
                      // The clears this writer read must still be the stored ones (see clearOutbox).
                      ConditionExpression:
                        '#version = :expected AND ' + (profile.outboxClears === undefined ? 'attribute_not_exists(#clears)' : '#clears = :clears'),
                      ExpressionAttributeNames: { '#version': PROFILE_VERSION_ATTRIBUTE, '#clears': OUTBOX_CLEARS_ATTRIBUTE },
                      ExpressionAttributeValues: {
                        ':expected': { N: String(expectedVersion) },
                        ...(profile.outboxClears === undefined ? {} : { ':clears': { N: String(profile.outboxClears) } }),
                      },
                    }),
              }),
            ),
          ),
        );
        // The lease it stored is what this store's overlay writes now go by.
        if (written !== undefined) rememberLease(profile);
        return written !== undefined;
      });
    },

    appendHistory(entry) {
      return guarded('appendHistory', entry.userId, async () => {
        const item = historyItemOf(entry, historyRetentionDays);
        // Keyed by the version the change produced, so writing the same entry again overwrites it with itself.
        await metered('appendHistory', 'write', client.send(new PutItemCommand({ ...common, Item: item })));
      });
    },

    clearOutbox(profile) {
      return guarded('clearOutbox', profile.userId, async () => {
        if (profile.outboxVersion === undefined) return true;
        const attributeNames: Record<string, string> = {
          '#outboxVersion': 'outboxVersion' satisfies keyof UserProfile,
          '#reviewAt': 'reviewAt' satisfies keyof UserProfile,
          '#reviewPk': TABLE_KEYS.reviewPartitionKey,
        };
        const removals = OUTBOX_FIELDS.map((field) => {
          attributeNames[`#${field}`] = field;
          return `#${field}`;
        });
        attributeNames['#pendingHistory'] = COMPRESSED_PENDING_HISTORY;
        removals.push('#pendingHistory');
        const values: Item = { ':outboxVersion': { N: String(profile.outboxVersion) }, ':one': { N: '1' } };
        attributeNames['#clears'] = OUTBOX_CLEARS_ATTRIBUTE;
        let setReviewPartition = '';
        // The index key is rebuilt from this profile's reviewAt, so the stored one must still be the same: a later
        // write that moved it also carried the outbox forward, and clears it itself after its own flush.
        let reviewAtUnchanged: string;
        // The index date once the outbox is empty: the review date, or the end of an overlay lease if that is sooner.
        const indexDate = reviewIndexDate({ ...profile, outboxVersion: undefined });
        if (indexDate !== undefined) {
          values[':reviewPk'] = { S: reviewPartitionOf(profile.userId, indexDate) };
          setReviewPartition = ' SET #reviewPk = :reviewPk';
        } else {
          removals.push('#reviewPk');
        }
        if (profile.reviewAt !== undefined) {
          values[':reviewAt'] = { S: profile.reviewAt };
          reviewAtUnchanged = '#reviewAt = :reviewAt';
        } else {
          reviewAtUnchanged = 'attribute_not_exists(#reviewAt)';
        }
        const cleared = await unlessConditionFails(
          metered(
            'clearOutbox',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: userKey(profile.userId) }, [TABLE_KEYS.sortKey]: { S: PROFILE_KEY } },
                // outboxClears moves too: a writer that read the profile before this clear cannot put the outbox back.
                UpdateExpression: `REMOVE ${removals.join(', ')}${setReviewPartition} ADD #clears :one`,
                // A newer decision that added to the outbox changed outboxVersion; its own flush clears it.
                ConditionExpression: `#outboxVersion = :outboxVersion AND ${reviewAtUnchanged}`,
                ExpressionAttributeNames: attributeNames,
                ExpressionAttributeValues: values,
              }),
            ),
          ),
        );
        return cleared !== undefined;
      });
    },

    listDueForReview(date, shard, cursor) {
      return guarded('listDueForReview', undefined, async () => {
        const partition = reviewPartition(date, shard);
        const page = await metered(
          'listDueForReview',
          'read',
          client.send(
            new QueryCommand({
              ...common,
              IndexName: TABLE_KEYS.reviewIndexName,
              KeyConditionExpression: '#reviewPk = :partition',
              ExpressionAttributeNames: { '#reviewPk': TABLE_KEYS.reviewPartitionKey },
              ExpressionAttributeValues: { ':partition': { S: partition } },
              Limit: REVIEW_PAGE_SIZE,
              ...(cursor !== undefined ? { ExclusiveStartKey: decodeCursor(cursor, partition) } : {}),
            }),
          ),
        );
        const userIds = (page.Items ?? []).map(userIdOf);
        return page.LastEvaluatedKey ? { userIds, cursor: encodeCursor(page.LastEvaluatedKey) } : { userIds };
      });
    },

    getReviewCheckpoint() {
      return guarded('getReviewCheckpoint', undefined, async () => {
        const { Item: item } = await metered(
          'getReviewCheckpoint',
          'read',
          client.send(
            new GetItemCommand({
              ...common,
              Key: { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } },
              ConsistentRead: true,
            }),
          ),
        );
        return item?.[CHECKPOINT_DATE_ATTRIBUTE]?.S;
      });
    },

    setReviewCheckpoint(date) {
      return guarded('setReviewCheckpoint', undefined, async () => {
        // Only forward: a slow rerun of an old night must not make the next run review it again.
        await unlessConditionFails(
          metered(
            'setReviewCheckpoint',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } },
                UpdateExpression: 'SET #date = :date',
                ConditionExpression: 'attribute_not_exists(#date) OR #date < :date',
                ExpressionAttributeNames: { '#date': CHECKPOINT_DATE_ATTRIBUTE },
                ExpressionAttributeValues: { ':date': { S: date } },
              }),
            ),
          ),
        );
      });
    },

    listHistory(userId, limit) {
      return guarded('listHistory', userId, async () => {
        if (limit <= 0) return [];
        const { Item: profileItem } = await metered(
          'listHistory',
          'read',
          client.send(
            new GetItemCommand({
              ...common,
              Key: userItem(userId, PROFILE_KEY, {}),
              ConsistentRead: true,
              ProjectionExpression: '#head',
              ExpressionAttributeNames: { '#head': 'lastHistoryId' satisfies keyof UserProfile },
            }),
          ),
        );
        const head = profileItem?.['lastHistoryId']?.S;
        // Uncommitted entries (a lost version race) are rare, so a page a little longer than the limit usually does.
        const items = await queryAll('listHistory', {
          KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :history)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ':pk': { S: userKey(userId) }, ':history': { S: HISTORY_PREFIX } },
          ScanIndexForward: false,
          Limit: limit + 4,
        });
        return committedHistory(items.map(historyEntryOf), head, limit);
      });
    },

    // ---- Review upkeep: a failed user listed again, and the shard count kept in the checkpoint item ----------
    deferReview(userId, date) {
      return guarded('deferReview', userId, async () => {
        // Only the index key: the profile may be the very item that cannot be read, so nothing else is touched.
        await unlessConditionFails(
          metered(
            'deferReview',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: { [TABLE_KEYS.partitionKey]: { S: userKey(userId) }, [TABLE_KEYS.sortKey]: { S: PROFILE_KEY } },
                UpdateExpression: 'SET #reviewPk = :reviewPk',
                ConditionExpression: 'attribute_exists(#pk)',
                ExpressionAttributeNames: { '#reviewPk': TABLE_KEYS.reviewPartitionKey, '#pk': TABLE_KEYS.partitionKey },
                ExpressionAttributeValues: { ':reviewPk': { S: reviewPartitionOf(userId, date) } },
              }),
            ),
          ),
        );
      });
    },

    widenReviewShardCount(current) {
      return guarded('widenReviewShardCount', undefined, async () => {
        const key = { [TABLE_KEYS.partitionKey]: { S: SYSTEM_KEY }, [TABLE_KEYS.sortKey]: { S: REVIEW_CHECKPOINT_KEY } };
        const { Item: item } = await metered(
          'widenReviewShardCount',
          'read',
          client.send(new GetItemCommand({ ...common, Key: key, ConsistentRead: true })),
        );
        const stored = Number(item?.[CHECKPOINT_SHARD_COUNT_ATTRIBUTE]?.N ?? 0);
        if (stored >= current) return stored;
        const written = await unlessConditionFails(
          metered(
            'widenReviewShardCount',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: key,
                UpdateExpression: 'SET #shards = :shards',
                // Never lowered: a concurrent run that recorded more wins.
                ConditionExpression: 'attribute_not_exists(#shards) OR #shards < :shards',
                ExpressionAttributeNames: { '#shards': CHECKPOINT_SHARD_COUNT_ATTRIBUTE },
                ExpressionAttributeValues: { ':shards': { N: String(current) } },
              }),
            ),
          ),
        );
        if (written !== undefined) return current;
        const { Item: now } = await metered(
          'widenReviewShardCount',
          'read',
          client.send(new GetItemCommand({ ...common, Key: key, ConsistentRead: true })),
        );
        return Math.max(current, Number(now?.[CHECKPOINT_SHARD_COUNT_ATTRIBUTE]?.N ?? 0));
      });
    },
    // ---- end of review upkeep --------------------------------------------------------------------------------

    recordSend(userId, date, sendId) {
      return guarded('recordSend', userId, async () => {
        const recorded = await unlessConditionFails(
          metered(
            'recordSend',
            'write',
            client.send(
              new UpdateItemCommand({
                ...common,
                Key: dayItemKey(userId, date),
                UpdateExpression: 'ADD #sends :one, #sendIds :sendIds SET #expiresAt = :expiresAt',
                ConditionExpression: 'NOT contains(#sendIds, :sendId)',
                ExpressionAttributeNames: {
                  '#sends': DAY_ATTRIBUTES.sends,
                  '#sendIds': DAY_ATTRIBUTES.sendIds,
                  '#expiresAt': TABLE_KEYS.timeToLiveAttribute,
                },
                ExpressionAttributeValues: {
                  ':one': { N: '1' },
                  ':sendIds': { SS: [sendId] },
                  ':sendId': { S: sendId },
                  ':expiresAt': expiresAt(date),
                },
              }),
            ),
          ),
        );
        return recorded !== undefined;
      });
    },

    // ---- Operator: erasure (a block of its own; it reads the partition, so it follows any layout change) ----

    deleteUserItems(userId) {
      return guarded('deleteUserItems', userId, async () => {
        // Every item under the user's key, whatever its kind: keys only, so the read is as small as it can be.
        const keys = (
          await queryAll('deleteUserItems', {
            ConsistentRead: true,
            KeyConditionExpression: '#pk = :pk',
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: { ':pk': { S: userKey(userId) } },
            ProjectionExpression: '#pk, #sk',
          })
        ).map((item): Item => ({ [TABLE_KEYS.partitionKey]: item[TABLE_KEYS.partitionKey]!, [TABLE_KEYS.sortKey]: item[TABLE_KEYS.sortKey]! }));
        for (let start = 0; start < keys.length; start += MAX_BATCH_WRITE_ITEMS) {
          let requests = keys.slice(start, start + MAX_BATCH_WRITE_ITEMS).map((Key) => ({ DeleteRequest: { Key } }));
          for (let attempt = 0; requests.length > 0; attempt++) {
            if (attempt >= MAX_UNPROCESSED_RETRIES) {
              throw new StoreError(
                'deleteUserItems',
                `${requests.length} deletes of ${userRef(userId)} stayed unprocessed; run the erasure again (it is safe to repeat)`,
              );
            }
            if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
            const output = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests }, ReturnConsumedCapacity: 'TOTAL' }));
            // A batch reports one entry per table, not the single total `metered` reads.
            const units = (output.ConsumedCapacity ?? []).reduce((sum, consumed) => sum + (consumed.CapacityUnits ?? 0), 0);
            onCapacity?.('deleteUserItems', { read: 0, write: units });
            requests = (output.UnprocessedItems?.[tableName] ?? []).flatMap((request) =>
              request.DeleteRequest?.Key ? [{ DeleteRequest: { Key: request.DeleteRequest.Key } }] : [],
            );
          }
        }
        return { deleted: keys.length };
      });
    },

    // ---- Re-judge after a ruleset change (a block of its own): a Scan of the profiles, and its checkpoint ----

    scanUserIds(segment, totalSegments, cursor) {
      return guarded('scanUserIds', undefined, async () => {
        const page = await metered(
          'scanUserIds',
          'read',
          client.send(
            new ScanCommand({
              ...common,
              Segment: segment,
              TotalSegments: totalSegments,
              Limit: REJUDGE_SCAN_PAGE,
              FilterExpression: '#sk = :profile',
              ProjectionExpression: '#pk',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':profile': { S: PROFILE_KEY } },
              ...(cursor !== undefined ? { ExclusiveStartKey: decodeScanCursor(cursor) } : {}),
            }),
          ),
        );
        const userIds = (page.Items ?? []).map(userIdOf);
        return page.LastEvaluatedKey ? { userIds, cursor: encodeCursor(page.LastEvaluatedKey) } : { userIds };
      });
    },

    getRejudgedVersion() {
      return guarded('rejudgeCheckpoint', undefined, async () => (await readSystemItem(REJUDGED_VERSION_KEY))?.['rulesetVersion']?.S);
    },

    setRejudgedVersion(version) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        await writeSystemItem(REJUDGED_VERSION_KEY, { rulesetVersion: version });
      });
    },

    getRejudgeProgress(version, segment) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        const item = await readSystemItem(rejudgeProgressKey(version, segment));
        if (!item) return undefined;
        const progress: RejudgeProgress = { done: item['done']?.BOOL === true };
        if (item['cursor']?.S !== undefined) progress.cursor = item['cursor'].S;
        return progress;
      });
    },

    setRejudgeProgress(version, segment, progress) {
      return guarded('rejudgeCheckpoint', undefined, async () => {
        await writeSystemItem(rejudgeProgressKey(version, segment), { ...progress });
      });
    },
  };
}
