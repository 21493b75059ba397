/**
 * Evaluation speed: the Strata core (metrics from day buckets, qualification, decision) against a bare
 * json-rules-engine run of the same rules on the same facts, and against the same logic hand-written in plain
 * JavaScript (the physical limit). All three run side by side in one process, on the shipped ruleset.
 */
import { Engine } from 'json-rules-engine';
import { addDays } from '../functions/core/dates.js';
import { decideTier } from '../functions/core/decide.js';
import { factsAt } from '../functions/core/metrics.js';
import { qualify } from '../functions/core/qualify.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { type DayBucket, newProfile } from '../functions/core/state.js';

export interface EvaluationResult {
  coreUs: number;
  jreUs: number;
  plainJsUs: number;
  coreOverJre: number;
  plainOverJre: number;
}

/** A typical active user: 24 active days in the last 60, a few lessons, messages, tasks and one order. */
export function typicalBuckets(ruleset: Ruleset, today: string): DayBucket[] {
  const counter = (name: string): string => ruleset.metrics.find((m) => m.name === name)!.countCounter;
  const sum = (name: string): string => ruleset.metrics.find((m) => m.name === name)!.sumCounter!;
  const buckets: DayBucket[] = [];
  for (let day = 0; day < 60; day++) {
    if (day % 5 === 1 || day % 5 === 3) continue;
    const counters: Record<string, number> = { [counter('daysActive30')]: 3 };
    if (day % 3 === 0) counters[counter('contentCompleted30')] = 1;
    if (day % 2 === 0) counters[counter('groupMessages30')] = 2;
    if (day % 9 === 0) counters[counter('tasksCompleted30')] = 1;
    if (day === 20) {
      counters[counter('spend90')] = 1;
      counters[sum('spend90')] = 1299;
    }
    buckets.push({ date: addDays(today, -day), counters });
  }
  return buckets.sort((a, b) => (a.date < b.date ? -1 : 1));
}

/** The shipped example rules, hand-compiled: what the rule JSON means with no engine at all. */
function plainQualify(buckets: DayBucket[], today: string, counters: Record<string, string>, goal: string | null): string {
  const from30 = addDays(today, -29);
  const from90 = addDays(today, -89);
  let days30 = 0;
  let content30 = 0;
  let messages30 = 0;
  let tasks30 = 0;
  let spend90 = 0;
  let referrals90 = 0;
  for (const bucket of buckets) {
    if (bucket.date < from90 || bucket.date > today) continue;
    const c = bucket.counters;
    spend90 += c[counters['spend']!] ?? 0;
    referrals90 += c[counters['referrals']!] ?? 0;
    if (bucket.date < from30) continue;
    if ((c[counters['days']!] ?? 0) > 0) days30 += 1;
    content30 += c[counters['content']!] ?? 0;
    messages30 += c[counters['messages']!] ?? 0;
    tasks30 += c[counters['tasks']!] ?? 0;
  }
  if (days30 >= 12 && (spend90 >= 999 || referrals90 >= 3)) return 'core';
  if (days30 >= 10 && (messages30 >= 5 || tasks30 >= 2 || (goal === 'career-change' && content30 >= 6))) return 'active';
  if (days30 >= 3 && content30 >= 1) return 'member';
  return 'visitor';
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timeIt(iterations: number, run: () => Promise<unknown> | unknown): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await run();
  return Number(process.hrtime.bigint() - started) / 1000 / iterations;
}

export async function measureEvaluation(ruleset: Ruleset, iterations = 5000): Promise<EvaluationResult> {
  const now = new Date('2026-11-02T10:00:00+08:00');
  const today = '2026-11-02';
  const buckets = typicalBuckets(ruleset, today);
  const facts = factsAt(ruleset, buckets, {}, today);

  const bare = new Engine([], { allowUndefinedFacts: true });
  for (const [tier, rules] of Object.entries(ruleset.rules)) {
    rules.forEach((rule, i) =>
      bare.addRule({ name: `${tier}#${i}`, conditions: rule.conditions as never, event: { type: 'qualifies', params: { tier } } }),
    );
  }
  const counterIds = {
    days: ruleset.metrics.find((m) => m.name === 'daysActive30')!.countCounter,
    content: ruleset.metrics.find((m) => m.name === 'contentCompleted30')!.countCounter,
    messages: ruleset.metrics.find((m) => m.name === 'groupMessages30')!.countCounter,
    tasks: ruleset.metrics.find((m) => m.name === 'tasksCompleted30')!.countCounter,
    spend: ruleset.metrics.find((m) => m.name === 'spend90')!.sumCounter!,
    referrals: ruleset.metrics.find((m) => m.name === 'referrals90')!.countCounter,
  };
  // The three must agree, or the comparison means nothing.
  const coreTier = (await qualify(ruleset, facts)).tier;
  const plainTier = plainQualify(buckets, today, counterIds, null);
  if (coreTier !== plainTier) throw new Error(`Bench: core says ${coreTier}, plain JavaScript says ${plainTier}`);
  // The common case: an event that leaves the user where they are.
  const profile = { ...newProfile('user-1', coreTier, new Date('2026-10-01T00:00:00Z')), version: 3 };

  // Alternate short chunks of the three and take each side's median chunk, so that a slow phase of a shared machine
  // (or a garbage collection) lands on both sides rather than deciding the ratio.
  const core = async (): Promise<unknown> => {
    const qualification = await qualify(ruleset, factsAt(ruleset, buckets, profile.attributes, today));
    return decideTier({ ruleset, profile, qualification, now, trigger: 'event' });
  };
  const jre = (): Promise<unknown> => bare.run(facts);
  const plain = (): unknown => plainQualify(buckets, today, counterIds, null);
  const chunk = Math.max(100, Math.floor(iterations / 10));
  const chunks = { core: [] as number[], jre: [] as number[], plain: [] as number[] };
  for (const run of [core, jre, plain]) await timeIt(chunk, run); // warm-up
  for (let round = 0; round < Math.ceil(iterations / chunk); round++) {
    chunks.core.push(await timeIt(chunk, core));
    chunks.jre.push(await timeIt(chunk, jre));
    chunks.plain.push(await timeIt(chunk * 10, plain));
  }
  const coreUs = median(chunks.core);
  const jreUs = median(chunks.jre);
  const plainJsUs = median(chunks.plain);
  return { coreUs, jreUs, plainJsUs, coreOverJre: coreUs / jreUs, plainOverJre: plainJsUs / jreUs };
}
