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
  /** Conversions of treated and held-out users, observed over the same horizon. */
  observed: HoldoutComparison;
}

export interface GroupOutcome {
  /** Users who entered the journey at least once. */
  users: number;
  /** Of them, users with a conversion event within an observation window. */
  converted: number;
  /** converted ÷ users; null for an empty group. */
  rate: number | null;
}

/**
 * Each entry is observed from entry until the user leaves the tier, the journey's planned length ends or the replay
 * ends, whichever comes first, for treated and held-out users alike. In a replay the history does not react to
 * sends, so the difference describes the history, not what the journey adds.
 */
export interface HoldoutComparison {
  /** The journey's planned length in days (its waits and branch timeouts); null when a loop makes it open-ended. */
  horizonDays: number | null;
  treated: GroupOutcome;
  heldOut: GroupOutcome;
  /** Treated − held-out rate in percentage points, with a 95 % interval (Newcombe); null below 30 users a group. */
  difference: { points: number; low: number; high: number } | null;
}

/** One side of a comparison: which rules, named so that a reader knows which is which. */
export interface ComparedSide {
  /** The project folder's name. */
  label: string;
  /** `git describe` of the folder, when it is in a git checkout. */
  describe?: string;
  rulesetVersion: string;
}

/** A journey's numbers on one side; null on the side whose ruleset has no such journey. */
export interface JourneyNumbers {
  journeyId: string;
  entered: number;
  /** Sends per step id (checks for branches). */
  sent: Record<string, number>;
  /** Users converted within the observation horizon, treated and held out together. */
  converted: number;
}

export interface JourneyComparison {
  tier: string;
  before: JourneyNumbers | null;
  after: JourneyNumbers | null;
}

export interface ShipDayMove {
  userId: string;
  kind: 'promoted' | 'grace-started' | 'demoted' | 'tier-removed';
  from: string;
  to: string;
  graceUntil?: string;
}

export interface RulesetComparison {
  /** The summary's own rules; the baseline. */
  baseline: ComparedSide;
  /** The --compare rules: the change being considered. */
  candidate: ComparedSide;
  rulesetVersion: string;
  /** The candidate's ladder; a tier in either ladder appears in every chart. */
  tiers: Array<{ id: string; name: string }>;
  finalTiers: Record<string, number>;
  /** Users whose final tier differs between the two rulesets. */
  usersMoved: number;
  moves: TierFlow[];
  up: number;
  down: number;
  /** Every user who ends in a different tier, by user id. */
  users: Array<{ userId: string; from: string; to: string }>;
  /** Per tier's journey: entries, sends per step and conversions, before (baseline) and after (candidate). */
  journeys: JourneyComparison[];
  /**
   * Deploying the candidate over the baseline's state at the end of the history: each user judged once by the new
   * rules, as the first review after the deploy would. Who is promoted at once, who enters grace.
   */
  shipDay: { promoted: number; graceStarted: number; demoted: number; tierRemoved: number; users: ShipDayMove[] };
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
