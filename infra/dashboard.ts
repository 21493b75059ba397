/**
 * The operator's CloudWatch dashboard: tiers (the nightly census, who entered and left each tier), each journey's
 * funnel, and the plumbing (dead letters, queue age, review duration and failures).
 *
 * The tier and journey widgets are built from the ruleset at synth, one line per tier, journey or send step, so the
 * dashboard always matches the deployed rules. The analytics metrics are read by a SEARCH on their Tier / Journey /
 * Step dimension and summed: the same metric may come from more than one function (ingest and the review both
 * record tier changes), each with its own `service` dimension, and a plain metric would match only one of them.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import {
  Dashboard,
  GraphWidget,
  type IMetric,
  type IWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  Stats,
  TextWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ANALYTICS_DIMENSIONS, ANALYTICS_METRICS, type AnalyticsMetricName } from '../functions/core/analytics-metrics.js';
import { isSendStep } from '../functions/core/journey/journey-schema.js';
import type { Ruleset } from '../functions/core/ruleset.js';
import { REVIEW_SERVICE_NAME, REVIEW_USERS_FAILED_METRIC } from '../functions/handlers/review.js';

/** Tier and journey counts are daily figures (the census is taken once a night). */
const DAILY = Duration.days(1);
const OPERATIONS_PERIOD = Duration.minutes(5);
const FULL_WIDTH = 24;
const HALF_WIDTH = 12;
const HEIGHT = 6;

export interface StrataDashboardProps {
  ruleset: Ruleset;
  /** The stack's namespace of the handlers' metrics (metricsNamespaceOf). */
  namespace: string;
  ingestQueue: IQueue;
  /** Dead-letter queues by a name an operator recognises. */
  deadLetterQueues: Record<string, IQueue>;
  reviewMachine: StateMachine;
  /** Journey state machines by tier. */
  journeyMachines: Record<string, StateMachine>;
}

export class StrataDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: StrataDashboardProps) {
    super(scope, id);
    const { ruleset } = props;
    const { stackName } = Stack.of(this);
    this.dashboard = new Dashboard(this, 'Dashboard', {
      // Named after the stack (unique in its account and region), so two stages in one account get two dashboards.
      dashboardName: stackName,
      defaultInterval: Duration.days(30),
    });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# Strata: ${stackName}\nMetrics in namespace \`${props.namespace}\`. Ruleset \`${ruleset.version}\`: tiers, tier flows and journey funnels per day; then dead letters, queue age and the nightly review. A dead letter or a failed execution also notifies the alarm topic.`,
        width: FULL_WIDTH,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(...this.tierWidgets(props));
    for (const tier of ruleset.tiers) {
      const journey = ruleset.journeys[tier.id];
      if (journey) this.dashboard.addWidgets(...this.journeyWidgets(props, tier.id, journey));
    }
    this.dashboard.addWidgets(...this.operationsWidgets(props));
  }

  /**
   * One analytics metric for one dimension value, summed over the functions that emit it. `where` is dimension →
   * value; ids are letters, digits and `-` (the ruleset's own rule), so they need no escaping inside the quotes.
   */
  private analytics(
    props: StrataDashboardProps,
    metricName: AnalyticsMetricName,
    where: Record<string, string>,
    label: string,
    statistic: string = Stats.SUM,
  ): IMetric {
    const terms = Object.entries(where)
      .map(([dimension, value]) => `${dimension}="${value}"`)
      .join(' ');
    return new MathExpression({
      expression: `SUM(SEARCH('Namespace="${props.namespace}" MetricName="${metricName}" ${terms}', '${statistic}', ${DAILY.toSeconds()}))`,
      label,
      period: DAILY,
    });
  }

  private tierWidgets(props: StrataDashboardProps): IWidget[] {
    const tiers = props.ruleset.tiers.map((tier) => tier.id);
    const perTier = (metricName: AnalyticsMetricName, statistic?: string): IMetric[] =>
      tiers.map((tier) => this.analytics(props, metricName, { [ANALYTICS_DIMENSIONS.tier]: tier }, tier, statistic));
    return [
      new SingleValueWidget({
        title: 'Users per tier (last nightly census)',
        // The census is a snapshot: the night's largest value, never a sum of nights.
        metrics: perTier(ANALYTICS_METRICS.tierCensus, Stats.MAXIMUM),
        width: FULL_WIDTH,
        height: 3,
      }),
      new GraphWidget({
        title: 'Users per tier over time',
        left: perTier(ANALYTICS_METRICS.tierCensus, Stats.MAXIMUM),
        stacked: true,
        width: FULL_WIDTH,
        height: HEIGHT,
      }),
      new GraphWidget({ title: 'Entered each tier per day', left: perTier(ANALYTICS_METRICS.tierEntered), width: HALF_WIDTH, height: HEIGHT }),
      new GraphWidget({ title: 'Left each tier per day', left: perTier(ANALYTICS_METRICS.tierLeft), width: HALF_WIDTH, height: HEIGHT }),
    ];
  }

  private journeyWidgets(props: StrataDashboardProps, tier: string, journey: Ruleset['journeys'][string]): IWidget[] {
    const byJourney = { [ANALYTICS_DIMENSIONS.journey]: journey.id };
    const funnel: Array<[AnalyticsMetricName, string]> = [
      [ANALYTICS_METRICS.journeyEntered, 'entered (treated)'],
      [ANALYTICS_METRICS.journeyHeldOut, 'held out'],
      [ANALYTICS_METRICS.journeyExited, 'exited'],
    ];
    const conversions: Array<[AnalyticsMetricName, string]> = [
      [ANALYTICS_METRICS.journeyConversionsTreated, 'converted, treated'],
      [ANALYTICS_METRICS.journeyConversionsHeldOut, 'converted, held out'],
    ];
    const sendSteps = journey.steps.filter(isSendStep).map((step) => step.id);
    const perStep = (metricName: AnalyticsMetricName): IMetric[] =>
      sendSteps.map((step) => this.analytics(props, metricName, { ...byJourney, [ANALYTICS_DIMENSIONS.step]: step }, step));
    const title = `Journey ${journey.id} (tier ${tier})`;
    return [
      new GraphWidget({
        title: `${title}: entered, held out, exited per day`,
        left: funnel.map(([metricName, label]) => this.analytics(props, metricName, byJourney, label)),
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: `${title}: sent and deferred per step per day`,
        left: perStep(ANALYTICS_METRICS.journeySent),
        right: perStep(ANALYTICS_METRICS.journeyDeferred),
        leftYAxis: { label: 'sent', showUnits: false },
        rightYAxis: { label: 'deferred', showUnits: false },
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: `${title}: conversions, treated vs held out`,
        left: conversions.map(([metricName, label]) => this.analytics(props, metricName, byJourney, label)),
        width: 8,
        height: HEIGHT,
      }),
    ];
  }

  private operationsWidgets(props: StrataDashboardProps): IWidget[] {
    const maximum = { period: OPERATIONS_PERIOD, statistic: Stats.MAXIMUM };
    const sum = { period: OPERATIONS_PERIOD, statistic: Stats.SUM };
    const deadLetters = Object.entries(props.deadLetterQueues);
    const review = props.reviewMachine;
    return [
      new GraphWidget({
        title: 'Dead letters waiting',
        left: deadLetters.map(([label, queue]) => queue.metricApproximateNumberOfMessagesVisible({ ...maximum, label })),
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Oldest message age (seconds)',
        left: [
          props.ingestQueue.metricApproximateAgeOfOldestMessage({ ...maximum, label: 'ingest queue' }),
          ...deadLetters.map(([label, queue]) => queue.metricApproximateAgeOfOldestMessage({ ...maximum, label })),
        ],
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Ingest queue depth',
        left: [props.ingestQueue.metricApproximateNumberOfMessagesVisible({ ...maximum, label: 'waiting' })],
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Nightly review duration (ms, re-judge included)',
        left: [review.metric('ExecutionTime', { period: DAILY, statistic: Stats.MAXIMUM, label: 'review execution time' })],
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Nightly review failures',
        left: [
          review.metricFailed({ ...sum, label: 'executions failed' }),
          review.metricTimedOut({ ...sum, label: 'executions timed out' }),
          new Metric({
            namespace: props.namespace,
            metricName: REVIEW_USERS_FAILED_METRIC,
            dimensionsMap: { service: REVIEW_SERVICE_NAME },
            ...sum,
            label: 'users not reviewed',
          }),
        ],
        width: 8,
        height: HEIGHT,
      }),
      new GraphWidget({
        title: 'Journey executions failed',
        left: Object.entries(props.journeyMachines).map(([tier, machine]) => machine.metricFailed({ ...sum, label: tier })),
        width: 8,
        height: HEIGHT,
      }),
    ];
  }
}
