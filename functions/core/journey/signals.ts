/**
 * Signals: the few events a journey must know about (conversions, and engagement with an earlier send), recorded
 * by ingest in the day buckets as `${filterId}@${epochSeconds}`. Filter ids are a hash of the filter itself, so
 * the same filter in two journeys is one signal, and an id never changes unless the filter does.
 */
import { canonicalJson, shortHash } from '../hash.js';
import { assertNever } from '../errors.js';
import type { DayBucket } from '../state.js';
import type { BranchStep, ConversionFilter, EngagementSignal, JourneyDefinition, JourneyStep, SignalFilter } from './journey-schema.js';

function withId(filter: Omit<SignalFilter, 'id'>): SignalFilter {
  return { id: 's' + shortHash(canonicalJson(filter), 10), ...filter };
}

export function conversionSignalFilter(conversion: ConversionFilter): SignalFilter {
  return withId({ eventTypes: [conversion.type], ...(conversion.where ? { where: conversion.where } : {}) });
}

/**
 * The engagement filter of a branch: the engagement event about the content or group that `since` sent.
 * "Opened" accepts content.viewed too, because apps report a view while delivery channels report an open.
 */
export function engagementSignalFilter(signal: EngagementSignal, since: JourneyStep): SignalFilter | undefined {
  switch (signal) {
    case 'content-opened':
      return since.type === 'content'
        ? withId({ eventTypes: ['content.opened', 'content.viewed'], where: { templateId: since.templateId } })
        : undefined;
    case 'content-completed':
      return since.type === 'content' ? withId({ eventTypes: ['content.completed'], where: { templateId: since.templateId } }) : undefined;
    case 'group-joined':
      return since.type === 'invite' ? withId({ eventTypes: ['group.joined'], where: { groupId: since.groupId } }) : undefined;
    default:
      return assertNever(signal, 'engagement signal');
  }
}

export function branchSignalFilter(journey: JourneyDefinition, branch: BranchStep): SignalFilter | undefined {
  const since = journey.steps.find((step) => step.id === branch.since);
  return since ? engagementSignalFilter(branch.signal, since) : undefined;
}

/** Every filter the ingest path must record for these journeys, deduplicated and in a stable order. */
export function journeySignalFilters(journeys: JourneyDefinition[]): SignalFilter[] {
  const byId = new Map<string, SignalFilter>();
  for (const journey of journeys) {
    const conversion = journey.settings.exitOn.conversion;
    if (conversion) {
      const filter = conversionSignalFilter(conversion);
      byId.set(filter.id, filter);
    }
    for (const step of journey.steps) {
      if (step.type !== 'branch') continue;
      const filter = branchSignalFilter(journey, step);
      if (filter) byId.set(filter.id, filter);
    }
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The earliest instant (epoch seconds) at or after `fromEpochSeconds` at which a signal of `filterId` was seen. */
export function firstSignalSince(buckets: readonly DayBucket[], filterId: string, fromEpochSeconds: number): number | undefined {
  let first: number | undefined;
  const prefix = filterId + '@';
  for (const bucket of buckets) {
    for (const signal of bucket.signals ?? []) {
      if (!signal.startsWith(prefix)) continue;
      const at = Number(signal.slice(prefix.length));
      if (Number.isFinite(at) && at >= fromEpochSeconds && (first === undefined || at < first)) first = at;
    }
  }
  return first;
}
