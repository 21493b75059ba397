/**
 * Facts for the rules: metric aggregation from daily buckets, and attribute values from the profile.
 *
 * Per event, the store adds `dayIncrements` to that day's bucket. Adds commute, so out-of-order and concurrent
 * events give the same counters; a duplicate is stopped by the store's event-id guard.
 */
import { InvalidEventError } from './errors.js';
import { addDays, daysBetween, instantMs, localDate } from './dates.js';
import type { UserEvent } from './event.js';
import type { CounterSpec, Ruleset } from './ruleset.js';
import type { DayBucket, StoredAttribute, UserProfile } from './state.js';
import type { SignalFilter } from './journey/journey-schema.js';
import type { FactValue, Facts } from './facts.js';

export type { FactValue, Facts } from './facts.js';

export interface DayIncrement {
  date: string;
  counters: Record<string, number>;
  signals: string[];
  /**
   * What the event contributes to the profile's attributes (attributeContribution), when it changes any: a store may
   * keep it beside the day's counters (the DynamoDB store's attribute overlay on a heavy day). Stores that do not
   * ignore it; the profile write then carries the change.
   */
  attributes?: Record<string, StoredAttribute>;
}

type FilterLike = Pick<CounterSpec, 'eventTypes' | 'where'>;

export function eventMatches(filter: FilterLike, event: Pick<UserEvent, 'type' | 'properties'>): boolean {
  if (filter.eventTypes && !filter.eventTypes.includes(event.type)) return false;
  if (filter.where) {
    for (const property in filter.where) {
      if (!Object.hasOwn(filter.where, property)) continue;
      const expected = filter.where[property]!;
      const actual = Object.hasOwn(event.properties, property) ? event.properties[property] : undefined;
      if (Array.isArray(expected) ? !expected.includes(actual as never) : actual !== expected) return false;
    }
  }
  return true;
}

export function epochSeconds(instant: string): number {
  return Math.floor(instantMs(instant) / 1000);
}

/**
 * A signal (`signalId@epochSeconds`) moved to the end of its `seconds`-long slot, so that a day with very many events
 * keeps a bounded set (one per slot). Rounding up keeps "a signal at or after T" true for every real signal after T;
 * the cost is that a signal up to one slot before T also counts.
 */
/**
 * A day holds this many event keys beside its counters (one write per event); the next event of that day turns it
 * heavy, and its keys move to per-event guards (functions/aws/dynamo-store.ts; the replay store mirrors it).
 */
export const DEFAULT_LIGHT_DAY_EVENTS = 16;
/** A heavy day keeps one signal per filter per hour (see coarsenSignal), so its signal set stays bounded too. */
export const HEAVY_DAY_SIGNAL_SECONDS = 3600;

export function coarsenSignal(signal: string, seconds: number): string {
  const at = signal.lastIndexOf('@');
  const epoch = Number(signal.slice(at + 1));
  return `${signal.slice(0, at)}@${Math.ceil(epoch / seconds) * seconds}`;
}

/**
 * What one event adds to its day's counters. Throws InvalidEventError if a summed property is not a number: the one
 * part of an event's increment that can refuse it (a replay screens a history with this alone).
 */
export function dayCounters(ruleset: Pick<Ruleset, 'counters'>, event: UserEvent): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const counter of ruleset.counters) {
    if (!eventMatches(counter, event)) continue;
    if (counter.sumProperty === undefined) {
      counters[counter.id] = 1;
      continue;
    }
    const raw = Object.hasOwn(event.properties, counter.sumProperty) ? event.properties[counter.sumProperty] : undefined;
    if (raw === undefined) continue;
    if (typeof raw !== 'number' || !Number.isFinite(raw)) {
      throw new InvalidEventError(event.eventId, [
        { pointer: `/properties/${counter.sumProperty}`, message: `must be a number (a metric adds it up), found ${JSON.stringify(raw)}` },
      ]);
    }
    counters[counter.id] = raw;
  }
  return counters;
}

/** What one event adds to its day's bucket. Throws InvalidEventError if a summed property is not a number. */
export function dayIncrements(ruleset: Pick<Ruleset, 'counters' | 'timezone' | 'signalFilters'>, event: UserEvent): DayIncrement {
  const counters = dayCounters(ruleset, event);
  const signals = ruleset.signalFilters
    .filter((filter: SignalFilter) => eventMatches(filter, event))
    .map((filter) => `${filter.id}@${epochSeconds(event.occurredAt)}`);
  return { date: localDate(event.occurredAt, ruleset.timezone), counters, signals };
}

/**
 * Metric values as of a local date, from the user's buckets. Buckets dated after `asOf` are ignored (an event
 * stamped in the future counts from its own day), so evaluating at a future date with no new events is exact.
 */
interface AggregationPlan {
  /** Counter id → the metrics that count days and events with it. */
  countTargets: Map<string, number[]>;
  /** Counter id → the metrics that add it up. */
  sumTargets: Map<string, number[]>;
}

const aggregationPlans = new WeakMap<object, AggregationPlan>();

/** Which metrics each counter feeds; built once per ruleset, since aggregation runs on every event. */
function aggregationPlan(metrics: Ruleset['metrics']): AggregationPlan {
  let plan = aggregationPlans.get(metrics);
  if (!plan) {
    plan = { countTargets: new Map(), sumTargets: new Map() };
    metrics.forEach((metric, i) => {
      plan!.countTargets.set(metric.countCounter, [...(plan!.countTargets.get(metric.countCounter) ?? []), i]);
      if (metric.sumCounter !== undefined) plan!.sumTargets.set(metric.sumCounter, [...(plan!.sumTargets.get(metric.sumCounter) ?? []), i]);
    });
    aggregationPlans.set(metrics, plan);
  }
  return plan;
}

interface AggregationScratch {
  firstDays: string[];
  counts: number[];
  sums: number[];
  days: number[];
  latest: Array<string | undefined>;
}

function newScratch(count: number): AggregationScratch {
  return {
    firstDays: new Array<string>(count).fill(''),
    counts: new Array<number>(count).fill(0),
    sums: new Array<number>(count).fill(0),
    days: new Array<number>(count).fill(0),
    latest: new Array<string | undefined>(count).fill(undefined),
  };
}

let scratch = newScratch(16);

export function aggregateMetrics(ruleset: Pick<Ruleset, 'metrics'>, buckets: readonly DayBucket[], asOf: string): Record<string, number | null> {
  // One pass over each bucket's few counters rather than over every metric: this runs on every event.
  const metrics = ruleset.metrics;
  const count = metrics.length;
  const { countTargets, sumTargets } = aggregationPlan(metrics);
  // Scratch space shared by every call (this function never awaits, so calls cannot interleave): it runs for every
  // decision and every candidate review date, and fresh arrays each time were a good part of the replay's garbage.
  if (scratch.counts.length < count) scratch = newScratch(count);
  const { firstDays, counts, sums, days, latest } = scratch;
  for (let i = 0; i < count; i++) {
    firstDays[i] = windowStartDate(asOf, metrics[i]!.definition.windowDays);
    counts[i] = 0;
    sums[i] = 0;
    days[i] = 0;
    latest[i] = undefined;
  }
  for (const bucket of buckets) {
    const date = bucket.date;
    if (date > asOf) continue;
    const counters = bucket.counters;
    for (const counterId in counters) {
      const n = counters[counterId]!;
      const counted = countTargets.get(counterId);
      if (counted !== undefined && n > 0) {
        for (const i of counted) {
          if (date < firstDays[i]!) continue;
          counts[i]! += n;
          days[i]! += 1;
          if (latest[i] === undefined || date > latest[i]!) latest[i] = date;
        }
      }
      // A sum counter only moves with its count counter, so summing by itself is the same as summing on counted days.
      const summed = sumTargets.get(counterId);
      if (summed !== undefined) for (const i of summed) if (date >= firstDays[i]!) sums[i]! += n;
    }
  }
  const values: Record<string, number | null> = {};
  for (let i = 0; i < count; i++) {
    const metric = metrics[i]!;
    switch (metric.definition.kind) {
      case 'count':
        values[metric.name] = counts[i]!;
        break;
      case 'sum':
        // Rounded to cents so that float addition order never changes a comparison.
        values[metric.name] = Math.round(sums[i]! * 100) / 100;
        break;
      case 'distinct-days':
        values[metric.name] = days[i]!;
        break;
      case 'last':
        values[metric.name] = latest[i] === undefined ? null : daysBetween(latest[i]!, asOf);
        break;
    }
  }
  return values;
}

/** The first local date inside a window ending on `asOf`. */
function windowStartDate(asOf: string, windowDays: number): string {
  return addDays(asOf, -(windowDays - 1));
}

/** Attribute facts as of a local date. */
export function attributeFacts(ruleset: Pick<Ruleset, 'attributes' | 'timezone'>, attributes: Record<string, StoredAttribute>, asOf: string): Facts {
  return writeAttributeFacts({}, ruleset, attributes, asOf);
}

/** Writes the attribute facts into `facts` (after what it holds, replacing a fact of the same name), and returns it. */
function writeAttributeFacts(
  facts: Facts,
  ruleset: Pick<Ruleset, 'attributes' | 'timezone'>,
  attributes: Record<string, StoredAttribute>,
  asOf: string,
): Facts {
  for (const name in ruleset.attributes) {
    if (!Object.hasOwn(ruleset.attributes, name)) continue;
    const definition = ruleset.attributes[name]!;
    const stored = Object.hasOwn(attributes, name) ? attributes[name] : undefined;
    if (definition.type === 'days-since') {
      facts[name] = stored ? Math.max(0, daysBetween(localDate(stored.at, ruleset.timezone), asOf)) : null;
    } else if (definition.type === 'tags') {
      facts[name] = Array.isArray(stored?.value) ? stored.value : [];
    } else {
      facts[name] = stored === undefined ? null : (stored.value as FactValue);
    }
  }
  return facts;
}

export function factsAt(ruleset: Ruleset, buckets: readonly DayBucket[], attributes: Record<string, StoredAttribute>, asOf: string): Facts {
  // Into the metrics' own record: every decision and every review date tried makes one.
  return writeAttributeFacts(aggregateMetrics(ruleset, buckets, asOf), ruleset, attributes, asOf);
}

function isLater(a: { at: string; eventId: string }, b: { at: string; eventId: string }): boolean {
  const ta = instantMs(a.at);
  const tb = instantMs(b.at);
  return ta !== tb ? ta > tb : a.eventId > b.eventId;
}

/**
 * A tags attribute keeps at most this many values (the first in sort order) so that a profile, and so every write
 * of it, stays small whatever a producer sends.
 */
export const MAX_TAGS = 32;

function tagValues(raw: unknown): string[] | undefined {
  if (typeof raw === 'string') return [raw];
  if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) return raw as string[];
  return undefined;
}

/**
 * Two tag lists merged: capped, and by sort order rather than arrival, so that the stored set is the same in any
 * delivery order (the smallest MAX_TAGS of a union is the smallest MAX_TAGS of the union of the capped parts).
 */
function mergedTags(current: readonly string[], values: readonly string[]): string[] {
  return [...new Set([...current, ...values])].sort().slice(0, MAX_TAGS);
}

/** Whether two tag lists hold the same values in the same order: a full list can change without growing. */
function sameTags(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((tag, i) => tag === b[i]);
}

/** `next` with `name` set to `value`, `next` being a copy of `current` made on the first change (undefined before). */
function withAttribute(
  next: Record<string, StoredAttribute> | undefined,
  current: Record<string, StoredAttribute>,
  name: string,
  value: StoredAttribute,
): Record<string, StoredAttribute> {
  const written = next ?? { ...current };
  written[name] = value;
  return written;
}

/**
 * The profile attributes after an event. Latest occurredAt wins for values (ties broken by event id), tags
 * accumulate and days-since keeps the earliest, so the result is the same in any delivery order.
 * Returns undefined when nothing changes, so the profile is not written.
 */
export function applyEventToAttributes(
  ruleset: Pick<Ruleset, 'attributes'>,
  profile: Pick<UserProfile, 'attributes'>,
  event: UserEvent,
): Record<string, StoredAttribute> | undefined {
  // One set of rules: the event's own contribution joined in, as a store joins a day's overlay (joinAttributes).
  const joined = joinAttributes(profile.attributes, attributeContribution(ruleset, event));
  return joined === profile.attributes ? undefined : joined;
}

const NO_ATTRIBUTES: Readonly<Record<string, StoredAttribute>> = Object.freeze({});

/**
 * What one event contributes to the profile's attributes on its own: each attribute it sets, stamped with the event
 * (a days-since attribute as value null, tags deduplicated, sorted and capped). Joined (joinAttributes) into any
 * profile it gives what applying the event gives, so a store may keep a day's contributions apart from the profile
 * and join them in when it reads (see the attribute overlay in dynamo-store.ts). Throws InvalidEventError for a
 * property of the wrong type.
 */
export function attributeContribution(ruleset: Pick<Ruleset, 'attributes'>, event: UserEvent): Record<string, StoredAttribute> {
  // Made on the first attribute only (withAttribute; no closure: this runs for every event, setting any or not).
  let contribution: Record<string, StoredAttribute> | undefined;
  for (const name in ruleset.attributes) {
    if (!Object.hasOwn(ruleset.attributes, name)) continue;
    const definition = ruleset.attributes[name]!;
    if (definition.event !== event.type) continue;
    if (definition.type === 'days-since') {
      contribution = withAttribute(contribution, NO_ATTRIBUTES, name, { value: null, at: event.occurredAt, eventId: event.eventId });
      continue;
    }
    const raw = Object.hasOwn(event.properties, definition.property) ? event.properties[definition.property] : undefined;
    if (raw === undefined) continue;
    if (definition.type === 'tags') {
      const values = tagValues(raw);
      if (!values)
        throw new InvalidEventError(event.eventId, [
          { pointer: `/properties/${definition.property}`, message: 'must be a string or a list of strings (it sets tags)' },
        ]);
      contribution = withAttribute(contribution, NO_ATTRIBUTES, name, {
        value: mergedTags([], values),
        at: event.occurredAt,
        eventId: event.eventId,
      });
      continue;
    }
    if (typeof raw !== definition.type) {
      throw new InvalidEventError(event.eventId, [
        {
          pointer: `/properties/${definition.property}`,
          message: `must be a ${definition.type} (it sets attribute "${name}"), found ${JSON.stringify(raw)}`,
        },
      ]);
    }
    contribution = withAttribute(contribution, NO_ATTRIBUTES, name, {
      value: raw as string | number | boolean,
      at: event.occurredAt,
      eventId: event.eventId,
    });
  }
  return contribution ?? NO_ATTRIBUTES;
}

/**
 * The join of two attribute records, in exactly applyEventToAttributes' order: per attribute, the later
 * (occurredAt, then event id) wins for values, the earlier for days-since (value null), and tags are the capped
 * union with the later event's stamp. Commutative, associative and idempotent, so joining events' contributions in
 * any grouping and order gives what applying the events one by one gives. Returns `a` itself when `b` adds nothing.
 */
export function joinAttributes(
  a: Readonly<Record<string, StoredAttribute>>,
  b: Readonly<Record<string, StoredAttribute>>,
): Record<string, StoredAttribute> {
  let next: Record<string, StoredAttribute> | undefined;
  for (const name in b) {
    if (!Object.hasOwn(b, name)) continue;
    const incoming = b[name]!;
    const stored = Object.hasOwn(a, name) ? a[name] : undefined;
    const joined = stored === undefined ? incoming : joinAttribute(stored, incoming);
    if (joined !== stored) next = withAttribute(next, a, name, joined);
  }
  return next ?? (a as Record<string, StoredAttribute>);
}

function joinAttribute(stored: StoredAttribute, incoming: StoredAttribute): StoredAttribute {
  // By the incoming value's kind (the attribute's definition), so that a value stored under an earlier definition of
  // another type is replaced as applying the event replaces it.
  if (Array.isArray(incoming.value)) {
    const current = Array.isArray(stored.value) ? stored.value : [];
    const merged = mergedTags(current, incoming.value);
    // `at` tracks the latest contributing event so that the stored item is the same in any delivery order.
    const latest = isLater(incoming, stored) ? incoming : stored;
    if (latest === stored && sameTags(merged, current)) return stored;
    return { value: merged, at: latest.at, eventId: latest.eventId };
  }
  // days-since keeps the first occurrence; every other value the latest.
  if (incoming.value === null) return isLater(stored, incoming) ? incoming : stored;
  return isLater(incoming, stored) ? incoming : stored;
}
