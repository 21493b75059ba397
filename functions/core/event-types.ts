/**
 * The event types Strata documents for producers: what each carries and what it drives. `strata validate` warns
 * when a metric, attribute or conversion names a type that is neither here nor in `knownEventTypes` of
 * rules/tiers.json, because a counter of an event nothing sends reads 0 for everyone, silently.
 */

export interface DocumentedEventType {
  type: string;
  /** Properties Strata reads from it, when it reads any. */
  properties?: string[];
  drives: string;
}

export const DOCUMENTED_EVENT_TYPES: readonly DocumentedEventType[] = [
  { type: 'user.signed_up', drives: 'days-since attributes such as daysSinceSignup' },
  { type: 'app.opened', drives: 'activity metrics (distinct-days)' },
  { type: 'content.viewed', properties: ['templateId'], drives: 'activity metrics; the content-opened branch of the template sent' },
  { type: 'content.opened', properties: ['templateId'], drives: 'the content-opened branch of the template sent (reported by delivery channels)' },
  { type: 'content.completed', properties: ['templateId'], drives: 'content metrics; the content-completed branch' },
  { type: 'group.joined', properties: ['groupId'], drives: 'the group-joined branch of the invite sent' },
  { type: 'group.message', drives: 'group participation metrics' },
  { type: 'task.completed', drives: 'task metrics' },
  { type: 'questionnaire.answered', properties: ['goal', 'level', 'interests', 'timezone'], drives: 'attributes and tags from the entry questionnaire' },
  { type: 'order.paid', properties: ['amount', 'product'], drives: 'monetary (sum of amount) and recency metrics; journey conversions' },
  { type: 'referral.converted', drives: 'referral metrics' },
  { type: 'message.opted_out', properties: ['channel'], drives: "stops journey sends on that channel, or on every channel when it names none" },
  { type: 'message.opted_in', properties: ['channel'], drives: 'resubscribes that channel, or every channel when it names none' },
];

export const DOCUMENTED_EVENT_TYPE_NAMES: ReadonlySet<string> = new Set(DOCUMENTED_EVENT_TYPES.map((e) => e.type));
