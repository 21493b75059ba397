/**
 * The formats marketers edit: `rules/tiers.json` (the ladder, metrics and attributes) and `rules/<tier>.json`
 * (standard json-rules-engine rules). Zod validates them; `strata schemas` exports the same schemas as JSON
 * Schema so that editors can autocomplete.
 */
import * as z from 'zod';

/** Names that would reach Object.prototype if used as keys; never allowed as a fact, metric or path segment. */
export const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export const factName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must start with a letter and use only letters, digits and _ (at most 64)')
  .refine((name) => !FORBIDDEN_KEYS.has(name), 'is a reserved name');

export const tierId = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'must be lower-case letters, digits and -, starting with a letter (at most 32)');

const eventType = z.string().min(1).max(128);
const scalar = z.union([z.string(), z.number(), z.boolean()]);

const eventFilter = {
  eventTypes: z.array(eventType).min(1).optional().describe('Event types that count. Leave out to count every user event.'),
  where: z
    .record(z.string().min(1), z.union([scalar, z.array(scalar).min(1)]))
    .optional()
    .describe('Property filters: each property must equal the value, or one of the values in a list.'),
};

const window = {
  windowDays: z.number().int().min(1).max(400).describe('Rolling window in whole days, today included.'),
  description: z.string().optional(),
};

export const metricSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('count').describe('How many matching events in the window.'), ...window, ...eventFilter }),
  z.strictObject({
    kind: z.literal('sum').describe('The sum of a numeric property over matching events in the window.'),
    property: z.string().min(1).describe('The numeric event property to add up, for example "amount".'),
    ...window,
    ...eventFilter,
  }),
  z.strictObject({
    kind: z.literal('distinct-days').describe('On how many different days in the window a matching event happened.'),
    ...window,
    ...eventFilter,
  }),
  z.strictObject({
    kind: z.literal('last').describe('Days since the latest matching event in the window (0 = today); missing if none.'),
    ...window,
    ...eventFilter,
  }),
]);
export type MetricDefinition = z.infer<typeof metricSchema>;

export const attributeSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.enum(['string', 'number', 'boolean']).describe('The latest value of an event property (latest occurredAt wins).'),
    event: eventType.describe('The event type that carries the value, for example "questionnaire.answered".'),
    property: z.string().min(1),
    description: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('tags').describe('Every value ever seen of a property (a string or a list of strings).'),
    event: eventType,
    property: z.string().min(1),
    description: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('days-since').describe('Whole days since the first event of this type, for example signup.'),
    event: eventType,
    description: z.string().optional(),
  }),
]);
export type AttributeDefinition = z.infer<typeof attributeSchema>;

export const tierSchema = z.strictObject({
  id: tierId.describe('The tier id; its rule lives in rules/<id>.json.'),
  name: z.string().min(1).max(64).describe('Display name.'),
  graceDays: z.number().int().min(0).max(365).describe('Days a user keeps this tier after they stop qualifying, before moving down.'),
  minTenureDays: z.number().int().min(0).max(365).describe('Days a freshly promoted user keeps this tier before any grace can start.'),
  downgrade: z.enum(['one-step', 'to-qualified']).describe('When grace expires: move down one tier, or straight to the tier the user qualifies for.'),
  journey: z.string().min(1).optional().describe('The journey file for this tier, for example "journeys/member.json".'),
});
export type TierDefinition = z.infer<typeof tierSchema>;

export const tiersFileSchema = z.strictObject({
  $schema: z.string().optional(),
  timezone: z.string().default('UTC').describe('IANA time zone for calendar days: windows, grace, tenure and review dates.'),
  tiers: z
    .array(tierSchema)
    .min(2)
    .max(7)
    .describe('The ladder, lowest first. The first tier is the base tier: everyone starts there and it has no rule file.'),
  metrics: z.record(factName, metricSchema).default({}),
  attributes: z.record(factName, attributeSchema).default({}),
  knownEventTypes: z
    .array(eventType)
    .optional()
    .describe('Event types your producers send beyond the documented ones, so that validate does not warn about them.'),
});
export type TiersFile = z.infer<typeof tiersFileSchema>;

/** The operators json-rules-engine ships with; Strata registers no others, so rule JSON can run no code. */
export const KNOWN_OPERATORS = [
  'equal',
  'notEqual',
  'lessThan',
  'lessThanInclusive',
  'greaterThan',
  'greaterThanInclusive',
  'in',
  'notIn',
  'contains',
  'doesNotContain',
] as const;
export type KnownOperator = (typeof KNOWN_OPERATORS)[number];

/**
 * One node of a json-rules-engine condition tree: either a leaf ({fact, operator, value}) or a boolean group
 * (all, any, not). One loose object rather than a union keeps zod's messages precise; the tree walker in
 * ruleset.ts checks that each node has exactly one shape.
 */
export interface ConditionNode {
  all?: ConditionNode[];
  any?: ConditionNode[];
  not?: ConditionNode;
  fact?: string;
  operator?: string;
  value?: unknown;
  path?: string;
  name?: string;
  priority?: number;
  params?: unknown;
  condition?: string;
}

export const conditionSchema: z.ZodType<ConditionNode> = z.lazy(() =>
  z.strictObject({
    all: z.array(conditionSchema).optional(),
    any: z.array(conditionSchema).optional(),
    not: conditionSchema.optional(),
    fact: z.string().optional(),
    operator: z.string().optional(),
    value: z.unknown().optional(),
    path: z.string().optional(),
    name: z.string().optional(),
    priority: z.number().int().min(1).optional(),
    params: z.unknown().optional(),
    condition: z.string().optional(),
  }),
);

export const ruleSchema = z.strictObject({
  $schema: z.string().optional(),
  name: z.string().optional(),
  priority: z.number().int().min(1).optional(),
  conditions: conditionSchema,
  event: z.strictObject({
    type: z.string().min(1),
    params: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type RuleDefinition = z.infer<typeof ruleSchema>;

/** A tier's rule file holds one json-rules-engine rule, or a list of them (any one passing qualifies). */
export const ruleListSchema = z.array(ruleSchema).min(1);
export const ruleFileSchema = z.union([ruleSchema, ruleListSchema]);
