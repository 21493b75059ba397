/**
 * The analytics counters as the handlers use them: every count that the table takes (an occurrence counted for
 * the first time) is also emitted as a CloudWatch metric (Embedded Metric Format, through Powertools), named and
 * dimensioned only as core/analytics-metrics.ts lists, for the stack's dashboard. A refused repeat emits nothing.
 *
 * Journey step outcomes are the exception: the table takes them once per execution, at the nightly count after its
 * end (core/tally-batches.ts), but the dashboard should show a send when it happens. So the journey-step handler
 * emits each step's outcome once its Task has succeeded (emitJourneyStep), and the tallies emit nothing.
 */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { type AnalyticsCounters, type CensusSnapshot, journeyStepCount, parseCounterName } from '../core/analytics.js';
import type { JourneyStepResult } from '../core/journey/journey-task.js';
import { ANALYTICS_DIMENSIONS, ANALYTICS_METRICS, type AnalyticsMetricName } from '../core/analytics-metrics.js';

type Dimensions = Partial<Record<(typeof ANALYTICS_DIMENSIONS)[keyof typeof ANALYTICS_DIMENSIONS], string>>;

/** One data point with only its own dimensions: the handler's service dimension would split the dashboard's lines. */
function emit(metrics: Metrics, name: AnalyticsMetricName, value: number, dimensions: Dimensions): void {
  const single = metrics.singleMetric();
  single.clearDefaultDimensions();
  for (const [dimension, dimensionValue] of Object.entries(dimensions)) single.addDimension(dimension, dimensionValue);
  single.addMetric(name, MetricUnit.Count, value);
}

/** The metrics one counted occurrence stands for. */
interface MetricPoint {
  name: AnalyticsMetricName;
  value: number;
  dimensions: Dimensions;
}

export function metricsOfCounts(counts: Record<string, number>, journeyId?: string): MetricPoint[] {
  const { tier: TIER, journey: JOURNEY, step: STEP } = ANALYTICS_DIMENSIONS;
  return Object.entries(counts).flatMap(([counter, value]): MetricPoint[] => {
    const parsed = parseCounterName(counter);
    if (!parsed || value === 0) return [];
    const [first = '', second = ''] = parsed.parts;
    switch (parsed.kind) {
      case 't':
        return [
          { name: value > 0 ? ANALYTICS_METRICS.tierEntered : ANALYTICS_METRICS.tierLeft, value: Math.abs(value), dimensions: { [TIER]: first } },
        ];
      case 'e':
        return [{ name: ANALYTICS_METRICS.journeyEntered, value, dimensions: { [JOURNEY]: first } }];
      case 'h':
        return [{ name: ANALYTICS_METRICS.journeyHeldOut, value, dimensions: { [JOURNEY]: first } }];
      case 'ct':
        return [{ name: ANALYTICS_METRICS.journeyConversionsTreated, value, dimensions: { [JOURNEY]: first } }];
      case 'ch':
        return [{ name: ANALYTICS_METRICS.journeyConversionsHeldOut, value, dimensions: { [JOURNEY]: first } }];
      case 's':
        return journeyId ? [{ name: ANALYTICS_METRICS.journeySent, value, dimensions: { [JOURNEY]: journeyId, [STEP]: first } }] : [];
      case 'd':
        return journeyId ? [{ name: ANALYTICS_METRICS.journeyDeferred, value, dimensions: { [JOURNEY]: journeyId, [STEP]: first } }] : [];
      case 'x':
        // Exit reasons stay out of the dimensions (see analytics-metrics.ts); the table keeps them.
        return journeyId && second !== '' ? [{ name: ANALYTICS_METRICS.journeyExited, value, dimensions: { [JOURNEY]: journeyId } }] : [];
      default:
        // Flows are drawn from TierEntered and TierLeft; the table keeps each pair.
        return [];
    }
  });
}

export function countersWithMetrics<C extends AnalyticsCounters>(counters: C, metrics: Metrics): C {
  return {
    ...counters,
    async addOnce(occurrence) {
      const added = await counters.addOnce(occurrence);
      // An execution's tally (of an older deployment): its steps were emitted as they happened (emitJourneyStep).
      if (added && occurrence.journeyId === undefined)
        for (const point of metricsOfCounts(occurrence.counts)) emit(metrics, point.name, point.value, point.dimensions);
      return added;
    },
  };
}

/** One journey step's outcome, as it happened: a send, a deferral or an exit (a branch check or a wait is none). */
export function emitJourneyStep(
  metrics: Metrics,
  step: { journeyId: string; stepId: string; executionName: string },
  result: JourneyStepResult,
): void {
  const count = journeyStepCount(step, result, '');
  for (const point of metricsOfCounts(count?.counts ?? {}, step.journeyId)) emit(metrics, point.name, point.value, point.dimensions);
}

export function emitCensus(metrics: Metrics, snapshot: CensusSnapshot): void {
  for (const [tier, users] of Object.entries(snapshot.tiers))
    emit(metrics, ANALYTICS_METRICS.tierCensus, users, { [ANALYTICS_DIMENSIONS.tier]: tier });
}
