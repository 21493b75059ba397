/**
 * Journey execution tallies, counted nightly in batches (see the top of analytics.ts for why).
 *
 * When an execution ends (its final Task) or is stopped (the flush of a tier change, an erasure), its tally is put
 * on a tally queue instead of being written to the table. The nightly review drains the queue (countTallies): it
 * drops every tally whose id is already counted and writes the rest, packed about 1 KB to an item, so a night's
 * tallies of every user cost a few write units instead of one each.
 *
 * Exactly once, whatever happens:
 * - A tally enqueued twice (a retried Task, a repeated flush), or two different tallies under one id (a stop racing
 *   the final Task): the first drained counts, the others find its id counted and are dropped.
 * - A drain that crashes after writing a batch and before removing its messages: the messages come back, and their
 *   ids are found in the batches of the last TALLY_DEDUP_NIGHTS nights (longer than a queued message can live).
 * - A drain that crashes in the middle of writing its batches: the written ones' ids are found, the rest are written.
 * - A batch written twice with the same content (a retried write) is refused by its key, which is its content's hash.
 * - Two counts at once (a review started twice, a redrive beside tonight's run): only the holder of the count's lease
 *   writes, and its ids are read under the lease, so two deliveries of one tally never both count.
 *
 * Pure: the encoding, the packing and the drain's logic; the queue and the table are ports.
 */
import type { CounterDay, ExecutionTally } from './analytics.js';
import { addDays } from './dates.js';

/**
 * The queue's messages live at most 14 days (SQS retention; a DLQ redrive keeps the first enqueue time), so a
 * redelivered tally was first drained at most this many nights before: its id is found among their batches.
 */
export const TALLY_DEDUP_NIGHTS = 15;
/**
 * The encoded tallies of one batch item stay within this many bytes, so that the item (its keys and this text)
 * stays within the 1 KB of one write unit.
 */
export const TALLY_BATCH_BYTES = 960;
/** Tallies received, checked and written per round of a drain; a round ends with their removal from the queue. */
export const TALLY_DRAIN_ROUND = 200;

/** The queue the final Task and the flush of a stop put a tally on. At-least-once: duplicates are dropped when counted. */
export interface TallyQueue {
  enqueue(tally: ExecutionTally): Promise<void>;
}

export interface ReceivedTally {
  /** What removes (or releases) this delivery of the tally. */
  receipt: string;
  tally: ExecutionTally;
}

/** The queue as the nightly count drains it. */
export interface TallySource {
  /** Up to `max` queued tallies not received by this drain yet (none: the queue is empty), oldest first where known. */
  receive(max: number): Promise<ReceivedTally[]>;
  /** The tallies are counted: they leave the queue. */
  remove(receipts: readonly string[]): Promise<void>;
  /** The tallies were not counted (the count failed): a retry may receive them at once. */
  release(receipts: readonly string[]): Promise<void>;
  /** How many tallies wait to be counted (approximate on SQS). */
  waiting(): Promise<number>;
}

/** One batch item as stored: the night it was drained and its tallies. */
export interface TallyBatch {
  drainDate: string;
  tallies: ExecutionTally[];
}

/**
 * The nightly count's lease: who holds it, and until when. Two counts at once could each find a tally's id
 * uncounted (two deliveries of one tally, one to each) and both store it, so a count writes only while it holds the
 * lease, and it holds it no longer than its invocation can run (a dead holder's lease lapses by itself).
 */
export interface CountLease {
  /** The same for every step of one count (the review execution's id), so a resumed count renews its own lease. */
  owner: string;
  now: Date;
  until: Date;
}

/** Where the nightly count keeps its batches. */
export interface TallyBatchStore {
  /** Takes or renews the count's lease; false while another owner holds an unexpired one. */
  holdCountLease(lease: CountLease): Promise<boolean>;
  /** The batches drained from `fromDrainDate` on, in key order. */
  readTallyBatches(fromDrainDate: string): Promise<TallyBatch[]>;
  /** Stores one encoded batch under the drain date and the text's hash; the same text twice is stored once. */
  writeTallyBatch(drainDate: string, encoded: string): Promise<void>;
}

export class TallyEncodingError extends Error {
  override readonly name = 'TallyEncodingError';
}

// ---- Encoding ----------------------------------------------------------------------------------------------------
//
// One tally per line: `<id> <journeyId> <entry date> <name>=<value>;<name>=<value>…`. Ids are base64url hashes with a
// prefix, journey and step ids kebab or snake case, counter names those of COUNTER_NAMES: none holds a space, `=`, `;`
// or a line break, which encodeTally checks rather than assumes.

const FORBIDDEN = /[\s=;]/;

function checkPart(what: string, value: string, tally: { id: string }): string {
  if (value === '' || FORBIDDEN.test(value))
    throw new TallyEncodingError(
      `Tally ${tally.id}: its ${what} ${JSON.stringify(value)} is empty or holds a space, "=" or ";"; ids and counter names must be kebab or snake case`,
    );
  return value;
}

export function encodeTally(tally: ExecutionTally): string {
  const counts = Object.entries(tally.counts)
    .filter(([, value]) => value !== 0)
    .map(([name, value]) => {
      if (!Number.isInteger(value)) throw new TallyEncodingError(`Tally ${tally.id}: the count ${name} is ${value}, not a whole number`);
      return `${checkPart('counter name', name, tally)}=${value}`;
    });
  return [
    checkPart('id', tally.id, tally),
    checkPart('journey id', tally.journeyId, tally),
    checkPart('date', tally.date, tally),
    counts.join(';'),
  ].join(' ');
}

/** The tally a line holds; undefined for a line that is not one (a line cut short by a crash, a foreign message). */
export function decodeTally(line: string): ExecutionTally | undefined {
  const parts = line.trim().split(' ');
  if (parts.length !== 4) return undefined;
  const [id, journeyId, date, encodedCounts] = parts as [string, string, string, string];
  if (id === '' || journeyId === '' || !/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  const counts: Record<string, number> = {};
  for (const pair of encodedCounts === '' ? [] : encodedCounts.split(';')) {
    const at = pair.lastIndexOf('=');
    const value = Number(pair.slice(at + 1));
    if (at <= 0 || !Number.isInteger(value) || pair.slice(at + 1) === '') return undefined;
    counts[pair.slice(0, at)] = (counts[pair.slice(0, at)] ?? 0) + value;
  }
  return { id, journeyId, date, counts };
}

export function decodeTallyBatch(text: string): ExecutionTally[] {
  return text.split('\n').flatMap((line) => {
    const tally = line.trim() === '' ? undefined : decodeTally(line);
    return tally ? [tally] : [];
  });
}

/**
 * The tallies packed into as few texts of at most `maxBytes` (UTF-8) as the order allows: each text a batch item.
 * A tally longer than `maxBytes` by itself still gets an item of its own (it costs more write units, and loses nothing).
 */
export function packTallies(tallies: readonly ExecutionTally[], maxBytes = TALLY_BATCH_BYTES): string[] {
  const texts: string[] = [];
  let lines: string[] = [];
  let bytes = 0;
  for (const tally of tallies) {
    const line = encodeTally(tally);
    const lineBytes = Buffer.byteLength(line);
    if (lines.length > 0 && bytes + 1 + lineBytes > maxBytes) {
      texts.push(lines.join('\n'));
      lines = [];
      bytes = 0;
    }
    bytes += (lines.length > 0 ? 1 : 0) + lineBytes;
    lines.push(line);
  }
  if (lines.length > 0) texts.push(lines.join('\n'));
  return texts;
}

// ---- Reading the batches back ---------------------------------------------------------------------------------

/**
 * One journey's step outcomes per entry date, from the batches: each tally id once (the first stored), the entries
 * from `fromDate` on. Batches drained after a period still hold that period's entries, so read them from its start.
 */
export function journeyDaysFromBatches(batches: readonly TallyBatch[], journeyId: string, fromDate: string): CounterDay[] {
  const seen = new Set<string>();
  const days: CounterDay[] = [];
  for (const batch of batches) {
    for (const tally of batch.tallies) {
      if (seen.has(tally.id)) continue;
      seen.add(tally.id);
      if (tally.journeyId === journeyId && tally.date >= fromDate) days.push(tally);
    }
  }
  return mergeCounterDays(days);
}

/** Lists of days summed by date, oldest first (the inputs' counts are left as they are). */
export function mergeCounterDays(...lists: ReadonlyArray<readonly CounterDay[]>): CounterDay[] {
  const byDate = new Map<string, Record<string, number>>();
  for (const list of lists) {
    for (const day of list) {
      let counts = byDate.get(day.date);
      if (!counts) byDate.set(day.date, (counts = {}));
      for (const [name, value] of Object.entries(day.counts)) counts[name] = (counts[name] ?? 0) + value;
    }
  }
  return [...byDate.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).map(([date, counts]) => ({ date, counts }));
}

// ---- The nightly count ------------------------------------------------------------------------------------------

export interface TallyCountResult {
  /** Deliveries received from the queue. */
  received: number;
  /** Tallies counted for the first time. */
  counted: number;
  /** Deliveries dropped: their id was counted already (this night or an earlier one). */
  duplicates: number;
  /** Batch items written. */
  batches: number;
  /** The queue is empty (false: the time budget ran out first, and a next step carries on). */
  done: boolean;
  /** Another count holds the lease: this one left the queue to it (and is done). */
  leaseHeldElsewhere?: true;
}

export interface TallyCountPorts {
  source: TallySource;
  batches: TallyBatchStore;
}

/**
 * Drains the tally queue into batch items of `drainDate`, round by round while `hasTimeLeft`: a round's tallies
 * are written before they are removed from the queue, so a crash anywhere repeats work and never loses or doubles
 * a tally (see the top of this file). A failed round (a write or the removal) releases its deliveries for the retry.
 * It writes only under the count's lease; while another count holds it, this one releases what it received and ends.
 */
export async function countTallies(
  ports: TallyCountPorts,
  options: { drainDate: string; lease: CountLease; hasTimeLeft: () => boolean; roundSize?: number; maxBytes?: number },
): Promise<TallyCountResult> {
  const { source, batches } = ports;
  const result: TallyCountResult = { received: 0, counted: 0, duplicates: 0, batches: 0, done: false };
  const roundSize = options.roundSize ?? TALLY_DRAIN_ROUND;
  let received = await source.receive(roundSize);
  // An empty queue (most nights of a small community) costs no lease write.
  if (received.length === 0) return { ...result, done: true };
  if (!(await batches.holdCountLease(options.lease))) {
    await source.release(received.map((delivery) => delivery.receipt)).catch(() => undefined);
    return { ...result, done: true, leaseHeldElsewhere: true };
  }
  // Read under the lease, so that what an earlier holder stored is seen.
  const counted = new Set<string>();
  for (const batch of await batches.readTallyBatches(addDays(options.drainDate, -TALLY_DEDUP_NIGHTS)))
    for (const tally of batch.tallies) counted.add(tally.id);
  for (;;) {
    const receipts = received.map((delivery) => delivery.receipt);
    const fresh: ExecutionTally[] = [];
    for (const { tally } of received) {
      if (counted.has(tally.id)) result.duplicates += 1;
      else {
        counted.add(tally.id);
        fresh.push(tally);
      }
    }
    try {
      for (const text of packTallies(fresh, options.maxBytes)) {
        await batches.writeTallyBatch(options.drainDate, text);
        result.batches += 1;
      }
      await source.remove(receipts);
    } catch (error) {
      // Let a retry receive this round's tallies at once: it drops those stored here, and stores the others.
      await source.release(receipts).catch(() => undefined);
      throw error;
    }
    result.received += received.length;
    result.counted += fresh.length;
    if (!options.hasTimeLeft()) return result;
    received = await source.receive(roundSize);
    if (received.length === 0) return { ...result, done: true };
  }
}
