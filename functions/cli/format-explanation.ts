/**
 * Renders a stored explanation as a readable tree: what changed, why, and every condition with the value the
 * rules saw. Used by `strata explain`.
 */
import type { Explanation } from '../core/decide.js';
import type { ConditionResult } from '../core/qualify.js';
import type { HistoryEntry } from '../core/state.js';

const OPERATOR_WORDS: Record<string, string> = {
  equal: '=',
  notEqual: '≠',
  lessThan: '<',
  lessThanInclusive: '≤',
  greaterThan: '>',
  greaterThanInclusive: '≥',
  in: 'in',
  notIn: 'not in',
  contains: 'contains',
  doesNotContain: 'does not contain',
};

const mark = (result: boolean | undefined): string => (result ? '✓' : '✗');

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return '(missing)';
  if (typeof value === 'object' && !Array.isArray(value) && value && 'fact' in value) return `fact ${(value as { fact: string }).fact}`;
  return JSON.stringify(value);
}

function conditionLines(node: ConditionResult, indent: string): string[] {
  if (node.all) return [`${indent}${mark(node.result)} all of:`, ...node.all.flatMap((child) => conditionLines(child, indent + '    '))];
  if (node.any) return [`${indent}${mark(node.result)} any of:`, ...node.any.flatMap((child) => conditionLines(child, indent + '    '))];
  if (node.not) return [`${indent}${mark(node.result)} not:`, ...conditionLines(node.not, indent + '    ')];
  const fact = node.path ? `${node.fact}.${node.path}` : node.fact;
  return [
    `${indent}${mark(node.result)} ${fact} ${OPERATOR_WORDS[node.operator ?? ''] ?? node.operator} ${formatValue(node.value)}   (was ${formatValue(node.factValue)})`,
  ];
}

export function formatExplanation(userId: string, entry: Pick<HistoryEntry, 'version'> & { explanation: Explanation }): string[] {
  const e = entry.explanation;
  const change = e.transitions
    .map((t) => (t.kind === 'grace-started' ? `grace started, until ${t.graceUntil}` : t.kind.replace('-', ' ')))
    .join(', ');
  const lines = [
    `${userId}: ${e.fromTier === e.toTier ? e.toTier : `${e.fromTier} → ${e.toTier}`} (${change})`,
    `  at ${e.at}, on ${e.trigger === 'event' ? `event ${e.eventId ?? '?'}` : e.trigger === 'review' ? 'the nightly review' : 'an operator action'}; ruleset ${e.rulesetVersion}; profile version ${entry.version}`,
    `  the rules qualify the user for: ${e.qualifiedTier}`,
  ];
  if (e.note) lines.push(`  note: ${e.note}`);
  for (const rule of e.rules) {
    lines.push(`  ${mark(rule.passed)} ${rule.tier}: "${rule.rule}"`);
    lines.push(...conditionLines(rule.conditions, '      '));
  }
  return lines;
}
