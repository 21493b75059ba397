/**
 * The shape of `summary.json`, written by `strata simulate --out DIR` and rendered by report.html.
 * Documented in the README; keep the two in step.
 */

export interface DaySnapshot {
  /** Local date in the ruleset's time zone. */
  date: string;
  /** Users in each tier at the end of that day. */
  tiers: Record<string, number>;
}

export interface TierFlow {
  /** The tier left, or null for users entering the ladder. */
  from: string | null;
  to: string;
  count: number;
}

export interface JourneyStepFunnel {
  stepId: string;
  kind: 'content' | 'invite' | 'offer' | 'branch';
  sent: number;
  deferred: number;
  exited: number;
}

export interface JourneyFunnel {
  journeyId: string;
  tier: string;
  /** Executions started. */
  entered: number;
  /** Users the holdout kept from every send. */
  heldOut: number;
  steps: JourneyStepFunnel[];
  /** Users who converted while in the journey, treated and held out. */
  converted: { treated: number; holdout: number };
}

export interface RulesetComparison {
  rulesetVersion: string;
  finalTiers: Record<string, number>;
  /** Users whose final tier differs between the two rulesets. */
  usersMoved: number;
  moves: TierFlow[];
  up: number;
  down: number;
}

export interface SimulationSummary {
  rulesetVersion: string;
  tiers: Array<{ id: string; name: string }>;
  firstDate: string;
  lastDate: string;
  users: number;
  events: {
    applied: number;
    duplicates: number;
    skippedLines: number;
    /** Events that ingest refuses under this ruleset (see rejections); not applied. */
    rejected: number;
    /** The first few rejected events, by line, with the reason. */
    rejections: Array<{ line?: number; eventId: string; reason: string }>;
  };
  transitions: { promotions: number; demotions: number; graceStarted: number; graceCleared: number };
  days: DaySnapshot[];
  finalTiers: Record<string, number>;
  flows: TierFlow[];
  journeys: JourneyFunnel[];
  compare?: RulesetComparison;
}
