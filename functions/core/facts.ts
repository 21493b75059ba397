/**
 * What the rules see and what they concluded: the facts of one evaluation and each rule's outcome. A leaf of the
 * core (it imports nothing), because the stored explanation (state.ts), the metrics that produce facts and the
 * qualification that judges them all speak these types.
 */

export type FactValue = number | string | boolean | string[] | null;
export type Facts = Record<string, FactValue>;

export interface ConditionResult {
  fact?: string;
  operator?: string;
  value?: unknown;
  path?: string;
  factValue?: FactValue;
  result?: boolean;
  all?: ConditionResult[];
  any?: ConditionResult[];
  not?: ConditionResult;
}

export interface RuleOutcome {
  tier: string;
  rule: string;
  passed: boolean;
  conditions: ConditionResult;
}
