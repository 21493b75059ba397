/**
 * The event types Strata documents for producers: what each carries and what it drives. `strata validate` warns
 * when a metric, attribute or conversion names a type that is neither here nor in `knownEventTypes` of
 * rules/tiers.json, because a counter of an event nothing sends reads 0 for everyone, silently.
 */

export interface DocumentedProperty {
  name: string;
  type: 'string' | 'number' | 'list of strings';
  /** What Strata does with it, and when it is needed. */
  use: string;
}

export interface DocumentedEventType {
  type: string;
  /** Properties Strata reads from it, when it reads any. */
  properties?: DocumentedProperty[];
  drives: string;
}

const templateId = (use: string): DocumentedProperty => ({ name: 'templateId', type: 'string', use });

export const DOCUMENTED_EVENT_TYPES: readonly DocumentedEventType[] = [
  {
    type: 'user.signed_up',
    properties: [{ name: 'channel', type: 'string', use: 'optional: where the user signed up; a metric or conversion `where` may filter on it' }],
    drives: 'days-since attributes such as daysSinceSignup',
  },
  { type: 'app.opened', drives: 'activity metrics (distinct-days)' },
  {
    type: 'content.viewed',
    properties: [templateId("needed for branches: the template viewed, matched against the content step's templateId")],
    drives: 'activity metrics; the content-opened branch of the template sent (apps report views)',
  },
  {
    type: 'content.opened',
    properties: [templateId("required: the template opened, matched against the content step's templateId")],
    drives: 'the content-opened branch of the template sent (delivery channels report opens)',
  },
  {
    type: 'content.completed',
    properties: [templateId('required for branches: the template finished')],
    drives: 'content metrics; the content-completed branch of the template sent',
  },
  {
    type: 'group.joined',
    properties: [{ name: 'groupId', type: 'string', use: "required: the group joined, matched against the invite step's groupId" }],
    drives: 'the group-joined branch of the invite sent',
  },
  { type: 'group.message', drives: 'group participation metrics' },
  { type: 'task.completed', drives: 'task metrics' },
  {
    type: 'questionnaire.answered',
    properties: [
      { name: 'goal', type: 'string', use: 'read by an attribute of rules/tiers.json that names it' },
      { name: 'level', type: 'string', use: 'read by an attribute of rules/tiers.json that names it' },
      { name: 'interests', type: 'list of strings', use: 'read by a tags attribute that names it' },
      { name: 'timezone', type: 'string', use: "an IANA zone: quiet hours are kept in the user's own time" },
    ],
    drives: 'attributes and tags from the entry questionnaire',
  },
  {
    type: 'order.paid',
    properties: [
      { name: 'amount', type: 'number', use: 'required for sum metrics: a number, not a string' },
      { name: 'product', type: 'string', use: "journeys' conversions filter on it (the visitor journey ends on pm-camp-4day)" },
      { name: 'offerId', type: 'string', use: 'optional: the offer the order redeemed; a conversion `where` may require it' },
    ],
    drives: 'monetary (sum of amount) and recency metrics; journey conversions',
  },
  { type: 'referral.converted', drives: 'referral metrics' },
  {
    type: 'message.opted_out',
    properties: [{ name: 'channel', type: 'string', use: 'optional: the channel the user left; with none, every channel' }],
    drives: 'stops journey sends on that channel, or on every channel when it names none',
  },
  {
    type: 'message.opted_in',
    properties: [{ name: 'channel', type: 'string', use: 'optional: the channel the user rejoined; with none, every channel' }],
    drives: 'resubscribes that channel, or every channel when it names none',
  },
];

/** The producer's guide table in the README, generated from the catalogue (a test keeps the README current). */
export function eventTypesMarkdown(): string {
  const rows = DOCUMENTED_EVENT_TYPES.map((entry) => {
    const properties = entry.properties?.map((p) => `\`${p.name}\` (${p.type}): ${p.use}`).join('<br>') ?? '—';
    return `| \`${entry.type}\` | ${properties} | ${entry.drives} |`;
  });
  return ['| event type | properties Strata reads | what it drives |', '| --- | --- | --- |', ...rows].join('\n');
}

export const DOCUMENTED_EVENT_TYPE_NAMES: ReadonlySet<string> = new Set(DOCUMENTED_EVENT_TYPES.map((e) => e.type));
