/**
 * The cost model: counted units (capacity per event, transitions per journey) times on-demand prices from
 * bench/prices.json. What cannot be counted locally (Lambda duration in AWS, SQS requests, storage) is an explicit
 * assumption, returned with the figures so that results.json says what the numbers rest on.
 */
import type { CapacityUnits } from '../functions/aws/dynamo-store.js';

export interface Prices {
  source: string;
  date: string;
  eventBridgePerMillionEvents: number;
  sqsPerMillionRequests: number;
  lambdaPerMillionRequests: number;
  lambdaPerGbSecondArm64: number;
  dynamoDbPerMillionWriteUnits: number;
  dynamoDbPerMillionReadUnits: number;
  dynamoDbStoragePerGbMonth: number;
  stepFunctionsPerThousandTransitions: number;
  pinpointPerTargetedEndpointMonth: number;
}

export const COST_ASSUMPTIONS = {
  ingestBatchSize: 10,
  /** One SendMessage by the EventBridge target, one ReceiveMessage and one DeleteMessageBatch per batch of 10. */
  sqsRequestsPerEvent: 1 + 2 / 10,
  /** A journey tally: one SendMessage when its execution ends, and its share of the nightly count's receives and deletes of 10. */
  sqsRequestsPerTally: 1 + 2 / 10,
  ingestLambdaMemoryGb: 0.5,
  /** Billed ingest duration per event in AWS: ~2–4 single-digit-ms DynamoDB calls plus ~0.1 ms of evaluation. */
  ingestLambdaMsPerEvent: 15,
  journeyStepLambdaMemoryGb: 0.5,
  journeyStepLambdaMsPerTask: 30,
  /** Each journey-step task: one consistent Query of the window (1 RRU) and, for a send, one guarded UpdateItem. */
  journeyStepReadUnitsPerTask: 1,
  journeyStepWriteUnitsPerSend: 1,
  eventsPerUserPerMonth: 20,
  users: 1_000_000,
  /** Stored per user: ~60 day items of ~150 bytes plus a ~1 KB profile and a few history items. */
  storedKbPerUser: 12,
  /** Reviews per user per month (2% due a night, 30 nights); each is one Query plus about two writes. */
  reviewsPerUserPerMonth: 0.6,
  reviewReadUnits: 1,
  reviewWriteUnits: 2,
  /** Empty long polls of the ingest queue: 20 s each, ~130k a month, a fixed cost not per event. */
  sqsIdlePollsPerMonth: 130_000,
} as const;

export interface CostInputs {
  /** Mean DynamoDB units per ingested event, all operations. */
  perEvent: CapacityUnits;
  /** Write units the analytics counters add per event (tier changes, conversions, the nightly tally batches, snapshots). */
  countersWritePerEvent?: number;
  /** Journey executions' tallies per event, each sent to the tally queue and drained from it by the nightly count. */
  talliesPerEvent?: number;
  /** Share of events that change a tier (each starts a journey and publishes a notice). */
  tierChangeShare: number;
  /** The 3-send journey's figures. */
  journey: { transitions: number; tasks: number; sends: number };
}

export interface CostResult {
  per1MEvents: number;
  per1MJourneys: number;
  monthly1MUsers: number;
  pinpointMonthly1MUsers: number;
  breakdownPer1MEvents: Record<string, number>;
  breakdownPer1MJourneys: Record<string, number>;
  breakdownMonthly: Record<string, number>;
  assumptions: typeof COST_ASSUMPTIONS & { tierChangeShare: number; journeysPerMonth: number; pricesSource: string; pricesDate: string };
}

const cents = (value: number): number => Math.round(value * 100) / 100;
const sum = (parts: Record<string, number>): number => Object.values(parts).reduce((a, b) => a + b, 0);

export function costModel(prices: Prices, inputs: CostInputs): CostResult {
  const a = COST_ASSUMPTIONS;
  const million = 1_000_000;
  // Tier notices go back through the bus; the journey they start is priced per journey.
  const eventParts = {
    eventBridge: (1 + inputs.tierChangeShare) * prices.eventBridgePerMillionEvents,
    sqs: a.sqsRequestsPerEvent * prices.sqsPerMillionRequests,
    lambdaRequests: (1 / a.ingestBatchSize) * prices.lambdaPerMillionRequests,
    lambdaDuration: million * a.ingestLambdaMemoryGb * (a.ingestLambdaMsPerEvent / 1000) * prices.lambdaPerGbSecondArm64,
    dynamoDbWrites: inputs.perEvent.write * prices.dynamoDbPerMillionWriteUnits,
    dynamoDbReads: inputs.perEvent.read * prices.dynamoDbPerMillionReadUnits,
    analyticsCounters: (inputs.countersWritePerEvent ?? 0) * prices.dynamoDbPerMillionWriteUnits,
    tallyQueue: (inputs.talliesPerEvent ?? 0) * a.sqsRequestsPerTally * prices.sqsPerMillionRequests,
  };
  const { transitions, tasks, sends } = inputs.journey;
  const journeyParts = {
    stepFunctions: million * transitions * (prices.stepFunctionsPerThousandTransitions / 1000),
    lambdaRequests: tasks * prices.lambdaPerMillionRequests,
    lambdaDuration: million * tasks * a.journeyStepLambdaMemoryGb * (a.journeyStepLambdaMsPerTask / 1000) * prices.lambdaPerGbSecondArm64,
    dynamoDb:
      tasks * a.journeyStepReadUnitsPerTask * prices.dynamoDbPerMillionReadUnits +
      sends * a.journeyStepWriteUnitsPerSend * prices.dynamoDbPerMillionWriteUnits,
    // Each send's JourneyAction goes to the bus for the delivery channels.
    eventBridge: sends * prices.eventBridgePerMillionEvents,
  };
  const per1MEvents = sum(eventParts);
  const per1MJourneys = sum(journeyParts);
  const eventsPerMonth = a.users * a.eventsPerUserPerMonth;
  const journeysPerMonth = eventsPerMonth * inputs.tierChangeShare;
  const reviews = a.users * a.reviewsPerUserPerMonth;
  const monthlyParts = {
    events: (eventsPerMonth / million) * per1MEvents,
    journeys: (journeysPerMonth / million) * per1MJourneys,
    review: (reviews / million) * (a.reviewReadUnits * prices.dynamoDbPerMillionReadUnits + a.reviewWriteUnits * prices.dynamoDbPerMillionWriteUnits),
    storage: ((a.users * a.storedKbPerUser) / 1024 / 1024) * prices.dynamoDbStoragePerGbMonth,
    sqsIdlePolls: (a.sqsIdlePollsPerMonth / million) * prices.sqsPerMillionRequests,
  };
  const round = (parts: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, cents(v)]));
  return {
    per1MEvents: cents(per1MEvents),
    per1MJourneys: cents(per1MJourneys),
    monthly1MUsers: cents(sum(monthlyParts)),
    pinpointMonthly1MUsers: cents(a.users * prices.pinpointPerTargetedEndpointMonth),
    breakdownPer1MEvents: round(eventParts),
    breakdownPer1MJourneys: round(journeyParts),
    breakdownMonthly: round(monthlyParts),
    assumptions: {
      ...a,
      tierChangeShare: Math.round(inputs.tierChangeShare * 10000) / 10000,
      journeysPerMonth: Math.round(journeysPerMonth),
      pricesSource: prices.source,
      pricesDate: prices.date,
    },
  };
}
