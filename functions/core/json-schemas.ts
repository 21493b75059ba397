/**
 * JSON Schemas of every format, generated from the zod schemas that validate them, so that editors autocomplete
 * exactly what `strata validate` accepts. `strata schemas` writes them to schemas/; a test keeps them current.
 */
import * as z from 'zod';
import { userEventSchema } from './event.js';
import { ruleFileSchema, tiersFileSchema } from './ruleset-schema.js';
import { journeyJsonSchema } from './journey/journey-schema.js';
import { channelsJsonSchema } from './channels.js';

function toJsonSchema(schema: z.ZodType, title: string): Record<string, unknown> {
  return { title, ...z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) };
}

export function formatJsonSchemas(): Record<string, Record<string, unknown>> {
  return {
    'tiers.schema.json': toJsonSchema(tiersFileSchema, 'Strata ladder, metrics and attributes (rules/tiers.json)'),
    'rule.schema.json': toJsonSchema(ruleFileSchema, 'Strata tier rule (rules/<tier>.json): a json-rules-engine rule'),
    'journey.schema.json': { title: 'Strata journey (journeys/<tier>.json)', ...journeyJsonSchema() },
    'channels.schema.json': { title: 'Strata delivery channels (channels.json)', ...channelsJsonSchema() },
    'user-event.schema.json': toJsonSchema(userEventSchema, 'Strata user event (the detail of an EventBridge entry)'),
  };
}
