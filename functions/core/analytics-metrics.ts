/**
 * The CloudWatch metrics that describe tiers and journeys, shared by the handlers that emit them and the stack's
 * dashboard that draws them, so that a renamed metric cannot leave an empty widget behind.
 *
 * Dimensions are limited to tier ids and journey/step ids: their number is fixed by the ruleset, so the metric
 * count (and its cost) cannot grow with users, events or exit reasons.
 */
export const ANALYTICS_DIMENSIONS = {
  tier: 'Tier',
  journey: 'Journey',
  step: 'Step',
} as const;

export const ANALYTICS_METRICS = {
  /** A user entered the tier (dimension Tier). */
  tierEntered: 'TierEntered',
  /** A user left the tier (dimension Tier). */
  tierLeft: 'TierLeft',
  /** Users in the tier, from the nightly review's snapshot of the census counters (dimension Tier). */
  tierCensus: 'TierCensus',
  /** A journey execution started for a treated user (dimension Journey). */
  journeyEntered: 'JourneyEntered',
  /** A user entered a journey but was held out (dimension Journey). */
  journeyHeldOut: 'JourneyHeldOut',
  /** A step's action was sent (dimensions Journey, Step). */
  journeySent: 'JourneySent',
  /** A step was deferred by quiet hours or a frequency cap (dimensions Journey, Step). */
  journeyDeferred: 'JourneyDeferred',
  /** A journey execution ended, whatever the reason (dimension Journey). */
  journeyExited: 'JourneyExited',
  /** A treated user converted inside the journey's observation horizon (dimension Journey). */
  journeyConversionsTreated: 'JourneyConversionsTreated',
  /** A held-out user converted inside the same horizon (dimension Journey). */
  journeyConversionsHeldOut: 'JourneyConversionsHeldOut',
} as const;

export type AnalyticsMetricName = (typeof ANALYTICS_METRICS)[keyof typeof ANALYTICS_METRICS];
