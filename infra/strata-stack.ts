/**
 * The Strata stack: the distributed engine for users who outgrow one machine.
 *
 *   producers ─PutEvents→ bus ─rule (user events)→ ingest queue ─batch of 10→ ingest Lambda ─→ table
 *                                                      └ DLQ (poison, exhausted retries, undeliverable)
 *   ingest / review ─StartExecution→ one journey state machine per tier ─Task→ journey-step Lambda ─→ bus
 *   journey-step / ingest / review (an execution ends or is stopped) ─its tally→ tally queue ─→ the review counts it
 *   Scheduler (nightly, local time) → review state machine: re-judge everyone if the ruleset is new (plan → Map
 *                                      over Scan segments → complete) → plan → Map over shards → count the
 *                                      journey tallies → advance checkpoint
 *
 * The rules and journeys are read at synth: the journeys are compiled to the state machines' ASL, and the files
 * are baked into every function, so one deploy ships one consistent version of both.
 */
import { Aws, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps, TimeZone } from 'aws-cdk-lib';
import { type Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, Billing, ProjectionType, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { EventBus, type EventPattern, Rule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { AccountPrincipal, AnyPrincipal, Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression, ScheduleTargetInput } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import {
  CfnStateMachineAlias,
  CfnStateMachineVersion,
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  type IChainable,
  JitterType,
  JsonPath,
  LogLevel,
  Map as MapState,
  Pass,
  type RetryProps,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { TABLE_KEYS } from '../functions/aws/table-schema.js';
import { JOURNEY_SOURCE, TIER_SOURCE } from '../functions/aws/eventbridge-publisher.js';
import { ConfigError } from '../functions/core/errors.js';
import { JOURNEY_STEP_RESOURCE, compileJourney, journeyVersion } from '../functions/core/journey/compile-journey.js';
import { LAMBDA_TASK_RETRY } from '../functions/core/lambda-task-retry.js';
import { type ProjectFiles, type Ruleset, loadRuleset } from '../functions/core/ruleset.js';
import { type JourneyTarget, bindDeadLetterQueue, bindEventBus, bindJourneyStarter, bindTable, bindTallyQueue } from './bindings.js';
import { TALLY_RECEIVE_VISIBILITY_SECONDS } from '../functions/aws/sqs-tally-queue.js';
import { busStatementId, metricsNamespaceOf } from './stage-names.js';
import { acknowledge, acknowledgeWildcardResources } from './nag.js';
import { RESERVED_SOURCE_PREFIX, type StageSettings } from './stage-settings.js';
import { USER_EVENTS_PATTERN } from '../functions/core/event-pattern.js';
import { REVIEW_SERVICE_NAME, REVIEW_USERS_FAILED_METRIC } from '../functions/handlers/review.js';
import { StrataFunction } from './strata-function.js';
import { ChannelDestinations } from './channel-destinations.js';
import { StrataDashboard } from './dashboard.js';

/** The name inside the `${...}` placeholder that the journey compiler leaves in every Task's Resource. */
export const JOURNEY_STEP_SUBSTITUTION = /^\$\{(\w+)\}$/.exec(JOURNEY_STEP_RESOURCE)![1]!;

/** LAMBDA_TASK_RETRY (shared with the compiled journeys) as CDK retry props. */
function lambdaTaskRetryProps(): RetryProps {
  const retry = LAMBDA_TASK_RETRY;
  return {
    errors: [...retry.ErrorEquals],
    interval: Duration.seconds(retry.IntervalSeconds),
    backoffRate: retry.BackoffRate,
    maxDelay: Duration.seconds(retry.MaxDelaySeconds),
    maxAttempts: retry.MaxAttempts,
    jitterStrategy: retry.JitterStrategy === 'FULL' ? JitterType.FULL : JitterType.NONE,
  };
}

/** SQS wants the visibility timeout at six times the function timeout, so a slow batch is not handed out twice. */
const INGEST_TIMEOUT = Duration.seconds(30);
const INGEST_VISIBILITY_TIMEOUT = Duration.seconds(INGEST_TIMEOUT.toSeconds() * 6);
/** Deliveries of one message before SQS moves it to the DLQ: room for throttling, not for a hot loop. */
const INGEST_MAX_RECEIVES = 5;
export const INGEST_BATCH_SIZE = 10;
/** The re-judge function's memory; the bench prices its duration with it. */
export const REJUDGE_MEMORY_MB = 1024;
/** The alias every journey execution starts on; a rollback points it at an earlier version. */
export const JOURNEY_ALIAS_NAME = 'live';
/** SQS's longest retention: a long outage of ingest (or of what it calls) must not expire events unseen. */
const QUEUE_RETENTION = Duration.days(14);
/** The ingest queue alarms when its oldest message has waited this long: ingest is down or far behind. */
export const INGEST_QUEUE_AGE_ALARM = Duration.hours(1);
/**
 * The tally queue is drained every night: its oldest tally is about a day old at most, unless the count stopped.
 * Alarm before the 14-day retention is near, with room for a weekend.
 */
export const TALLY_QUEUE_AGE_ALARM = Duration.days(3);
/**
 * Receives of one tally before it is dead-lettered: a count fails only on an outage, and each failed night is one
 * receive, so this is a week of failed nights (a message that is no tally fails every night and lands there).
 */
const TALLY_MAX_RECEIVES = 7;
/** A dead letter left this long is near its 14-day expiry: redrive it or lose it. */
export const DEAD_LETTER_AGE_ALARM = Duration.days(10);

export interface StrataStackProps extends StackProps {
  /** The repository root (rules/, journeys/, functions/, package-lock.json). */
  projectRoot: string;
  /** rules/*.json and journeys/*.json, path → text, as read at synth. */
  projectFiles: ProjectFiles;
  settings: StageSettings;
}

export class StrataStack extends Stack {
  readonly ruleset: Ruleset;
  readonly bus: EventBus;
  readonly table: TableV2;
  readonly ingestQueue: Queue;
  readonly ingestDeadLetterQueue: Queue;
  readonly scheduleDeadLetterQueue: Queue;
  /** Journey executions' tallies, waiting for the nightly count (core/tally-batches.ts). */
  readonly tallyQueue: Queue;
  readonly tallyDeadLetterQueue: Queue;
  readonly journeyMachines: Record<string, StateMachine> = {};
  /** Per tier: the version this deploy published and the alias that new executions start on. */
  readonly journeyTargets: Record<string, JourneyTarget & { version: CfnStateMachineVersion }> = {};
  readonly reviewMachine: StateMachine;
  readonly ingestFunction: StrataFunction;
  readonly reviewFunction: StrataFunction;
  readonly rejudgeFunction: StrataFunction;
  readonly journeyStepFunction: StrataFunction;
  readonly channelDestinations: ChannelDestinations;
  /** Every alarm notifies this topic; the `alarmEmail` setting subscribes an address to it. */
  readonly alarmTopic: Topic;
  readonly dashboard: StrataDashboard;

  constructor(scope: Construct, id: string, props: StrataStackProps) {
    super(scope, id, props);
    const { settings, projectFiles, projectRoot } = props;

    // A broken rule or journey fails the synth with every problem listed, before anything is deployed.
    const loaded = loadRuleset(projectFiles);
    if (!loaded.ruleset) throw new ConfigError(loaded.problems);
    this.ruleset = loaded.ruleset;

    const functionDefaults = {
      projectRoot,
      projectFiles,
      logRetention: settings.logRetentionDays,
      metricsNamespace: metricsNamespaceOf(this.stackName),
    };
    const shardCount = settings.reviewShards;

    // ---- Storage -------------------------------------------------------------------------------------------
    this.table = new TableV2(this, 'Table', {
      partitionKey: { name: TABLE_KEYS.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE_KEYS.sortKey, type: AttributeType.STRING },
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE_KEYS.timeToLiveAttribute,
      // Every user's standing and history; a stray `cdk destroy` or console click must not take it.
      deletionProtection: true,
      globalSecondaryIndexes: [
        {
          indexName: TABLE_KEYS.reviewIndexName,
          partitionKey: { name: TABLE_KEYS.reviewPartitionKey, type: AttributeType.STRING },
          sortKey: { name: TABLE_KEYS.reviewSortKey, type: AttributeType.STRING },
          // The review needs only who is due; it reads each profile itself, consistently.
          projectionType: ProjectionType.KEYS_ONLY,
        },
      ],
    });
    const tableBinding = { table: this.table, shardCount };

    // ---- Event intake --------------------------------------------------------------------------------------
    this.bus = new EventBus(this, 'Bus', { description: 'Strata: user events in; tier notices and journey actions out' });
    this.addBusPolicy(settings);

    this.ingestDeadLetterQueue = new Queue(this, 'IngestDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: QUEUE_RETENTION,
    });
    this.ingestQueue = new Queue(this, 'IngestQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: INGEST_VISIBILITY_TIMEOUT,
      retentionPeriod: QUEUE_RETENTION,
      deadLetterQueue: { queue: this.ingestDeadLetterQueue, maxReceiveCount: INGEST_MAX_RECEIVES },
    });
    new Rule(this, 'UserEventsRule', {
      eventBus: this.bus,
      description: "User events (not Strata's own notices) to the ingest queue",
      // The very pattern object the embedded stack routes by, so local and AWS agree on what reaches ingest.
      eventPattern: USER_EVENTS_PATTERN as unknown as EventPattern,
      // An event that cannot reach the queue lands in the same DLQ as the poison messages, so nothing is lost.
      targets: [new SqsQueue(this.ingestQueue, { deadLetterQueue: this.ingestDeadLetterQueue })],
    });

    // ---- Journey tallies, counted by the nightly review -----------------------------------------------------
    this.tallyDeadLetterQueue = new Queue(this, 'TallyDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: QUEUE_RETENTION,
    });
    this.tallyQueue = new Queue(this, 'TallyQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The count receives with a longer timeout of its own (sqs-tally-queue.ts); this covers any other reader.
      visibilityTimeout: Duration.seconds(TALLY_RECEIVE_VISIBILITY_SECONDS),
      retentionPeriod: QUEUE_RETENTION,
      deadLetterQueue: { queue: this.tallyDeadLetterQueue, maxReceiveCount: TALLY_MAX_RECEIVES },
    });

    // ---- Delivery channels (channels.json) ------------------------------------------------------------------
    this.channelDestinations = new ChannelDestinations(this, 'Channels', { bus: this.bus, channels: this.ruleset.channels });

    // ---- Functions -----------------------------------------------------------------------------------------
    this.journeyStepFunction = new StrataFunction(this, 'JourneyStep', {
      ...functionDefaults,
      handlerName: 'journey-step',
      description: 'Strata: one journey step (guard, send or defer), called by the journey state machines',
      timeout: Duration.seconds(30),
      memorySize: 512,
    });
    bindTable(this.journeyStepFunction.function, tableBinding, 'journeyStep');
    bindEventBus(this.journeyStepFunction.function, this.bus);
    bindTallyQueue(this.journeyStepFunction.function, this.tallyQueue, 'enqueue');

    for (const tier of this.ruleset.tiers) {
      const journey = this.ruleset.journeys[tier.id];
      if (!journey) continue;
      const machine = this.journeyMachine(tier.id, journey, settings);
      this.journeyMachines[tier.id] = machine;
      this.journeyTargets[tier.id] = this.publishJourneyVersion(tier.id, journey, machine);
    }

    this.ingestFunction = new StrataFunction(this, 'Ingest', {
      ...functionDefaults,
      handlerName: 'ingest',
      description: 'Strata: user events from SQS to tier decisions, journeys and notices',
      timeout: INGEST_TIMEOUT,
      memorySize: 512,
    });
    bindTable(this.ingestFunction.function, tableBinding, 'ingest');
    bindEventBus(this.ingestFunction.function, this.bus);
    bindJourneyStarter(this.ingestFunction.function, this.journeyTargets);
    bindTallyQueue(this.ingestFunction.function, this.tallyQueue, 'enqueue');
    bindDeadLetterQueue(this.ingestFunction.function, this.ingestDeadLetterQueue);
    this.ingestFunction.function.addEventSource(
      new SqsEventSource(this.ingestQueue, {
        batchSize: INGEST_BATCH_SIZE,
        reportBatchItemFailures: true,
        // A backlog must not scale ingest to the account's limit and throttle the journey-step function.
        maxConcurrency: settings.ingestMaxConcurrency,
      }),
    );

    this.reviewFunction = new StrataFunction(this, 'Review', {
      ...functionDefaults,
      handlerName: 'review',
      description: 'Strata: nightly review steps (plan, one shard, count the journey tallies, advance the checkpoint)',
      // A shard stops within its time budget and returns a cursor that the state machine resumes from.
      timeout: Duration.minutes(15),
      memorySize: 1024,
    });
    bindTable(this.reviewFunction.function, tableBinding, 'review');
    bindEventBus(this.reviewFunction.function, this.bus);
    bindJourneyStarter(this.reviewFunction.function, this.journeyTargets);
    bindTallyQueue(this.reviewFunction.function, this.tallyQueue, 'drain');

    this.rejudgeFunction = new StrataFunction(this, 'Rejudge', {
      ...functionDefaults,
      handlerName: 'rejudge',
      description: 'Strata: re-judge every user once under a newly deployed ruleset (plan, one Scan segment, complete)',
      // A segment stops between Scan pages within its time budget and resumes at its stored cursor.
      timeout: Duration.minutes(15),
      memorySize: REJUDGE_MEMORY_MB,
    });
    bindTable(this.rejudgeFunction.function, tableBinding, 'rejudge');
    bindEventBus(this.rejudgeFunction.function, this.bus);
    bindJourneyStarter(this.rejudgeFunction.function, this.journeyTargets);
    bindTallyQueue(this.rejudgeFunction.function, this.tallyQueue, 'enqueue');

    // ---- Nightly review ------------------------------------------------------------------------------------
    this.reviewMachine = this.reviewStateMachine(settings);
    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(
      this.scheduleDeadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is itself a dead-letter queue: EventBridge Scheduler puts a review start here after its retries fail.',
    );
    const timeZone = settings.reviewTimeZone ?? this.ruleset.timezone;
    new Schedule(this, 'NightlyReview', {
      description: `Strata nightly review, ${settings.reviewSchedule} in ${timeZone}`,
      schedule: ScheduleExpression.expression(settings.reviewSchedule, TimeZone.of(timeZone)),
      target: new StepFunctionsStartExecution(this.reviewMachine, {
        input: ScheduleTargetInput.fromObject({ trigger: 'schedule' }),
        deadLetterQueue: this.scheduleDeadLetterQueue,
        retryAttempts: 10,
        maxEventAge: Duration.hours(6),
      }),
    });

    // ---- Alarms --------------------------------------------------------------------------------------------
    this.alarmTopic = this.alarms(settings);
    this.dashboard = new StrataDashboard(this, 'Dashboard', {
      ruleset: this.ruleset,
      namespace: functionDefaults.metricsNamespace,
      ingestQueue: this.ingestQueue,
      deadLetterQueues: this.deadLetterQueues(),
      reviewMachine: this.reviewMachine,
      journeyMachines: this.journeyMachines,
    });

    new CfnOutput(this, 'EventBusName', { value: this.bus.eventBusName, description: 'Producers PutEvents here' });
    new CfnOutput(this, 'EventBusArn', { value: this.bus.eventBusArn });
    new CfnOutput(this, 'TallyQueueUrl', {
      value: this.tallyQueue.queueUrl,
      description: 'Journey tallies waiting for the nightly count: strata report --tally-queue, strata forget/lock --tally-queue',
    });
  }

  /**
   * Every alarm notifies one SNS topic (subscribe a pager, chat or email to it; `alarmEmail` adds an email). The
   * alarms: dead letters waiting (and near their expiry), the ingest queue falling behind, failed executions of
   * every state machine, a review that timed out, and users the review could not review.
   */
  private alarms(settings: StageSettings): Topic {
    const topic = new Topic(this, 'AlarmTopic', { displayName: `Strata alarms (${this.stackName})`, enforceSSL: true });
    acknowledge(
      topic,
      'AwsSolutions-SNS2',
      'Alarm notifications carry only alarm names, metrics and states, never user data; CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a customer key would cost more than this data is worth protecting.',
    );
    if (settings.alarmEmail) topic.addSubscription(new EmailSubscription(settings.alarmEmail));
    const notify = new SnsAction(topic);
    const alarmWhen = (alarm: Alarm): void => alarm.addAlarmAction(notify);
    const aboveZero = {
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    };

    for (const [id, queue] of Object.entries(this.deadLetterQueues())) {
      alarmWhen(
        queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }).createAlarm(this, `${id}DepthAlarm`, {
          alarmDescription: `Strata: messages in ${id}; read their "reason" attribute, fix, then redrive`,
          ...aboveZero,
        }),
      );
      alarmWhen(
        queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }).createAlarm(this, `${id}AgeAlarm`, {
          alarmDescription: `Strata: a message in ${id} is ${DEAD_LETTER_AGE_ALARM.toDays()} days old and expires at ${QUEUE_RETENTION.toDays()}; redrive it now`,
          threshold: DEAD_LETTER_AGE_ALARM.toSeconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    alarmWhen(
      this.ingestQueue
        .metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' })
        .createAlarm(this, 'IngestQueueAgeAlarm', {
          alarmDescription: `Strata: the oldest user event has waited ${INGEST_QUEUE_AGE_ALARM.toHours()} h for ingest; events expire after ${QUEUE_RETENTION.toDays()} days. Check the ingest function's errors and throttles.`,
          threshold: INGEST_QUEUE_AGE_ALARM.toSeconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
    );
    alarmWhen(
      this.tallyQueue
        .metricApproximateAgeOfOldestMessage({ period: Duration.hours(1), statistic: 'Maximum' })
        .createAlarm(this, 'TallyQueueAgeAlarm', {
          alarmDescription: `Strata: a journey tally has waited ${TALLY_QUEUE_AGE_ALARM.toDays()} days for the nightly count (tallies expire after ${QUEUE_RETENTION.toDays()}); check the review's CountTallies step`,
          threshold: TALLY_QUEUE_AGE_ALARM.toSeconds(),
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
    );
    const machines: Array<[string, StateMachine]> = [
      ...Object.entries(this.journeyMachines).map(([tier, machine]): [string, StateMachine] => [`Journey-${tier}`, machine]),
      ['Review', this.reviewMachine],
    ];
    for (const [id, machine] of machines) {
      alarmWhen(
        machine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }).createAlarm(this, `${id}FailedAlarm`, {
          alarmDescription: `Strata: ${id} executions failed; fix the cause, then redrive them (see the operator's guide)`,
          ...aboveZero,
        }),
      );
    }
    alarmWhen(
      this.reviewMachine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }).createAlarm(this, 'ReviewTimedOutAlarm', {
        alarmDescription: 'Strata: the nightly review timed out; it resumes on the next run, but look why',
        ...aboveZero,
      }),
    );
    alarmWhen(
      new Metric({
        namespace: metricsNamespaceOf(this.stackName),
        metricName: REVIEW_USERS_FAILED_METRIC,
        dimensionsMap: { service: REVIEW_SERVICE_NAME },
        period: Duration.hours(1),
        statistic: 'Sum',
      }).createAlarm(this, 'ReviewUsersFailedAlarm', {
        alarmDescription:
          'Strata: the nightly review could not review some users (they are retried the next night); the review logs name them by userRef and say why',
        ...aboveZero,
      }),
    );
    return topic;
  }

  /** Every dead-letter queue, by the id its alarms carry. */
  private deadLetterQueues(): Record<string, Queue> {
    const channels = this.channelDestinations.deadLetterQueue;
    return {
      IngestDeadLetterQueue: this.ingestDeadLetterQueue,
      ScheduleDeadLetterQueue: this.scheduleDeadLetterQueue,
      TallyDeadLetterQueue: this.tallyDeadLetterQueue,
      ...(channels ? { ChannelDeadLetterQueue: channels } : {}),
    };
  }

  /**
   * Who may put events on the bus besides this account's own principals (which IAM already governs):
   * the listed accounts, limited to the listed sources when there are any. With sources listed, no one (this
   * account included) may put any other source, except Strata's own notices; Strata's sources can never come
   * from another account, so no one outside can forge a tier notice or a journey action.
   */
  private addBusPolicy(settings: StageSettings): void {
    const { allowedAccounts, allowedSources } = settings;
    const onBus = { actions: ['events:PutEvents'], resources: [this.bus.eventBusArn] };
    if (allowedAccounts.length > 0) {
      this.bus.addToResourcePolicy(
        new PolicyStatement({
          sid: busStatementId(this.stackName, 'AllowListedAccounts'),
          principals: allowedAccounts.map((account) => new AccountPrincipal(account)),
          ...onBus,
          ...(allowedSources.length > 0 ? { conditions: { StringEquals: { 'events:source': allowedSources } } } : {}),
        }),
      );
      this.bus.addToResourcePolicy(
        new PolicyStatement({
          sid: busStatementId(this.stackName, 'DenyStrataSourcesFromOtherAccounts'),
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          ...onBus,
          conditions: {
            StringLike: { 'events:source': `${RESERVED_SOURCE_PREFIX}*` },
            StringNotEquals: { 'aws:PrincipalAccount': Aws.ACCOUNT_ID },
          },
        }),
      );
    }
    if (allowedSources.length > 0) {
      this.bus.addToResourcePolicy(
        new PolicyStatement({
          sid: busStatementId(this.stackName, 'DenyUnlistedSources'),
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          ...onBus,
          conditions: { StringNotEquals: { 'events:source': [...allowedSources, TIER_SOURCE, JOURNEY_SOURCE] } },
        }),
      );
    }
  }

  /** Logs for a state machine at `level`, never with the execution data (it holds user ids). */
  private stateMachineLogs(id: string, settings: StageSettings, level: LogLevel) {
    const destination = new LogGroup(this, `${id}Logs`, {
      // Step Functions delivers through CloudWatch vended logs; this prefix keeps the account's log resource
      // policy from growing with every state machine. The suffix is unique to this stack instance: the group
      // outlives the stack (its logs are kept), so a stack created again after a destroy must not reuse its name.
      logGroupName: `/aws/vendedlogs/states/${this.stackName}-${id}-${this.stackInstanceSuffix()}`,
      retention: settings.logRetentionDays,
      // Deleted when its creation is rolled back (nothing was logged yet), kept on update and delete.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });
    return { destination, level, includeExecutionData: false };
  }

  /** The last group of the stack id's UUID: differs between two creations of a stack with the same name. */
  private stackInstanceSuffix(): string {
    return Fn.select(4, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))));
  }

  private acknowledgeStateMachineRole(machine: StateMachine): void {
    acknowledge(
      machine.role,
      'AwsSolutions-IAM5[Resource::*]',
      'Step Functions log delivery (logs:*LogDelivery, DescribeResourcePolicies) and X-Ray tracing (xray:Put*) have no resource-level permissions; these are the actions CDK adds for logging and tracing only.',
    );
  }

  private journeyMachine(tier: string, journey: Ruleset['journeys'][string], settings: StageSettings): StateMachine {
    const id = `Journey-${tier}`;
    const stepFunction = this.journeyStepFunction.function;
    const machine = new StateMachine(this, id, {
      comment: `Strata journey "${journey.id}" for tier ${tier}`,
      stateMachineType: StateMachineType.STANDARD,
      // Compiled from journeys/*.json at synth; never hand-written ASL.
      definitionBody: DefinitionBody.fromString(JSON.stringify(compileJourney(journey))),
      definitionSubstitutions: { [JOURNEY_STEP_SUBSTITUTION]: stepFunction.functionArn },
      // ERROR only: a journey waits for days, and every state transition logged at ALL is paid for.
      logs: this.stateMachineLogs(id, settings, LogLevel.ERROR),
      tracingEnabled: true,
    });
    // The Task's Resource is the unqualified function ARN, so invoking that ARN is all the role needs.
    machine.addToRolePolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [stepFunction.functionArn] }));
    this.acknowledgeStateMachineRole(machine);
    acknowledge(
      machine,
      'AwsSolutions-SF1',
      'Journey executions wait for days and run for every user in a tier: logging ALL events would bill a log line per state transition for millions of executions. ERROR logs every failure; X-Ray traces and the execution history (kept 90 days) show the rest.',
    );
    return machine;
  }

  // ---- Journey versions and aliases ---------------------------------------------------------------------------
  /**
   * Publishes the journey machine's current revision as a version, and points the `live` alias at it; ingest and
   * the review start executions on the alias. The version resource is replaced whenever the definition changes
   * (its revision id does), and the replaced one is retained, so the versions of earlier deploys stay available:
   * a rollback is one `update-state-machine-alias` (see the README). Running executions are never moved; a
   * version only decides what new entries run. Retained versions cannot outlive their machine: deleting a state
   * machine (a failed first deploy's rollback, or `cdk destroy`) deletes all its versions.
   */
  private publishJourneyVersion(
    tier: string,
    journey: Ruleset['journeys'][string],
    machine: StateMachine,
  ): JourneyTarget & { version: CfnStateMachineVersion } {
    const id = `Journey-${tier}`;
    const version = new CfnStateMachineVersion(this, `${id}Version`, {
      stateMachineArn: machine.stateMachineArn,
      stateMachineRevisionId: machine.stateMachineRevisionId,
      description: `Strata journey "${journey.id}" version ${journeyVersion(journey)}`,
    });
    version.applyRemovalPolicy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE);
    const alias = new CfnStateMachineAlias(this, `${id}Alias`, {
      name: JOURNEY_ALIAS_NAME,
      description: `Strata: new ${tier} journeys start here; point it at an earlier version to roll back`,
      routingConfiguration: [{ stateMachineVersionArn: version.attrArn, weight: 100 }],
    });
    new CfnOutput(this, `${id}AliasArn`, {
      value: alias.attrArn,
      description: `Journey alias of tier ${tier} (rollback: update-state-machine-alias)`,
    });
    return { machine, alias, aliasName: JOURNEY_ALIAS_NAME, version };
  }

  /**
   * A Lambda Task of the review machine: the shared Lambda retry (throttling, a lost sandbox) comes first; CDK's
   * own, shorter one is turned off.
   */
  private lambdaTask(id: string, fn: IFunction, props: Omit<ConstructorParameters<typeof LambdaInvoke>[2], 'lambdaFunction'>): LambdaInvoke {
    const task = new LambdaInvoke(this, id, { lambdaFunction: fn, payloadResponseOnly: true, retryOnServiceExceptions: false, ...props });
    task.addRetry(lambdaTaskRetryProps());
    return task;
  }

  /**
   * One step that a Map item loops on: when its invocation's time budget runs out, the function returns `next`
   * (the same item, with where to resume), and the step runs again from there until it returns none. Any other
   * failure is retried too, after the Lambda retry: a rerun resumes where the step stopped.
   */
  private resumableStep(id: string, pausedId: string, resumeId: string, doneId: string, fn: IFunction): IChainable {
    const step = this.lambdaTask(id, fn, {});
    step.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(30), maxAttempts: 3, backoffRate: 2 });
    return step.next(
      new Choice(this, pausedId)
        .when(Condition.isPresent('$.next'), new Pass(this, resumeId, { inputPath: '$.next' }).next(step))
        .otherwise(new Succeed(this, doneId)),
    );
  }

  /**
   * Re-judge (when the ruleset is new) → plan → (nothing due? done) → Map over shards → count the journey tallies
   * (looping while a step returns `next`) → advance the checkpoint.
   *
   * The re-judge runs first, inside the nightly review, so a deploy that brings a new `rulesetVersion` reaches
   * every user on the first night, whatever their review date: its plan step compares the stored re-judged
   * version with the deployed one, so it runs once per version and costs two transitions on other nights. A
   * failed re-judge does not cost the night's review: it is caught, the review runs, and the execution then fails
   * (the review alarm fires); the next run resumes the re-judge at each segment's stored cursor.
   *
   * The review is one Lambda per shard, never one child per user: a shard of a night is a few hundred users, and
   * a failed shard fails the run before the checkpoint moves, so the next run catches up on that night.
   */
  private reviewStateMachine(settings: StageSettings): StateMachine {
    const reviewFunction = this.reviewFunction.function;
    const rejudgeFunction = this.rejudgeFunction.function;

    const planRejudge = this.lambdaTask('PlanRejudge', rejudgeFunction, { payload: TaskInput.fromObject({ step: 'plan' }), resultPath: '$.rejudge' });
    const eachSegment = new MapState(this, 'RejudgeEachSegment', {
      itemsPath: '$.rejudge.segments',
      maxConcurrency: settings.reviewMapConcurrency,
      itemSelector: { step: 'segment', segment: JsonPath.numberAt('$$.Map.Item.Value') },
      resultPath: JsonPath.DISCARD,
    });
    eachSegment.itemProcessor(this.resumableStep('RejudgeSegment', 'SegmentPaused', 'ResumeSegment', 'SegmentDone', rejudgeFunction));
    const completeRejudge = this.lambdaTask('CompleteRejudge', rejudgeFunction, {
      payload: TaskInput.fromObject({ step: 'complete' }),
      resultPath: '$.rejudgeCompletion',
    });

    const plan = this.lambdaTask('PlanReview', reviewFunction, { payload: TaskInput.fromObject({ step: 'plan' }), resultPath: '$.plan' });
    // The re-judge's failure is kept in the state, so the run can report it after the review.
    const rejudgeFailed = { errors: ['States.ALL'], resultPath: '$.rejudgeFailure' };
    eachSegment.addCatch(plan, rejudgeFailed);
    completeRejudge.addCatch(plan, rejudgeFailed);
    const rejudge = planRejudge.next(
      new Choice(this, 'RejudgeNeeded')
        .when(Condition.booleanEquals('$.rejudge.needed', true), eachSegment.next(completeRejudge).next(plan))
        .otherwise(plan),
    );

    const eachShard = new MapState(this, 'ReviewEachShard', {
      itemsPath: '$.plan.shards',
      maxConcurrency: settings.reviewMapConcurrency,
      itemSelector: {
        step: 'shard',
        dates: JsonPath.listAt('$.plan.dates'),
        shard: JsonPath.numberAt('$$.Map.Item.Value'),
      },
      resultPath: '$.shards',
    });
    // The shard step's input is the state itself: the Map item, or the `next` a paused invocation returned.
    eachShard.itemProcessor(this.resumableStep('ReviewShard', 'ShardPaused', 'ResumeShard', 'ShardDone', reviewFunction));
    // After the shards (their flushes queue the tallies of the executions they stop), before the census snapshot.
    const countTallies = this.lambdaTask('CountTallies', reviewFunction, {
      // The execution's id owns the count's lease: a second review run at the same time leaves the queue to this one.
      payload: TaskInput.fromObject({ step: 'countTallies', owner: JsonPath.stringAt('$$.Execution.Id') }),
      resultPath: '$.tallies',
    });
    countTallies.addRetry({ errors: ['States.ALL'], interval: Duration.seconds(30), maxAttempts: 3, backoffRate: 2 });
    const advance = this.lambdaTask('AdvanceCheckpoint', reviewFunction, {
      payload: TaskInput.fromObject({ step: 'advance', dates: JsonPath.listAt('$.plan.dates') }),
      resultPath: '$.checkpoint',
    });
    const outcome = new Choice(this, 'RejudgeFailed')
      .when(
        Condition.isPresent('$.rejudgeFailure'),
        new Fail(this, 'ReviewedButRejudgeFailed', {
          error: 'Strata.RejudgeFailed',
          cause: 'The re-judge failed and the review ran; the next run resumes the re-judge (its error is in the execution history)',
        }),
      )
      .otherwise(new Succeed(this, 'Reviewed'));
    plan.next(
      new Choice(this, 'AnythingToReview')
        .when(
          Condition.isPresent('$.plan.dates[0]'),
          eachShard
            .next(countTallies)
            .next(new Choice(this, 'TalliesLeft').when(Condition.isPresent('$.tallies.next'), countTallies).otherwise(advance.next(outcome))),
        )
        .otherwise(new Pass(this, 'AlreadyReviewed').next(outcome)),
    );
    const machine = new StateMachine(this, 'ReviewStateMachine', {
      comment:
        'Strata nightly review: re-judge everyone under a new ruleset, then plan, review each shard, count the journey tallies, advance the checkpoint',
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(rejudge),
      timeout: Duration.hours(12),
      // One execution a night: every event is affordable, and it shows each shard's progress.
      logs: this.stateMachineLogs('Review', settings, LogLevel.ALL),
      tracingEnabled: true,
    });
    this.acknowledgeStateMachineRole(machine);
    // LambdaInvoke grants the function ARN and its versions (`<arn>:*`); only the unqualified ARN is called.
    acknowledgeWildcardResources(
      machine.role,
      [`${reviewFunction.functionArn}:*`, `${rejudgeFunction.functionArn}:*`],
      "CDK's LambdaInvoke also grants the review and re-judge functions' versions and aliases; they are functions of this stack.",
    );
    return machine;
  }
}
