/**
 * Strata's only change to json-rules-engine's operators: a missing fact never satisfies a negative operator.
 *
 * Out of the box, `{"fact": "goal", "operator": "notEqual", "value": "career-change"}` passes for a user who never
 * answered the questionnaire, which would qualify users for tiers on the strength of data we do not have. Here
 * every operator except `equal` is false when the fact is missing (null or undefined), like SQL's NULL; test for
 * absence explicitly with `{"operator": "equal", "value": null}`.
 */
import { type Engine, Operator } from 'json-rules-engine';

const isPresent = (value: unknown): boolean => value !== undefined && value !== null;

export function registerSafeOperators(engine: Engine): void {
  engine.addOperator(new Operator('notEqual', (a: unknown, b: unknown) => a !== b, isPresent));
  engine.addOperator(new Operator('notIn', (a: unknown, b: unknown[]) => Array.isArray(b) && !b.includes(a), isPresent));
  engine.addOperator(new Operator('in', (a: unknown, b: unknown[]) => Array.isArray(b) && b.includes(a), isPresent));
}
