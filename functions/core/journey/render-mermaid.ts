/**
 * A journey as a Mermaid flowchart, for `strata journey show <tier>` and for pasting into docs and reviews.
 * Shapes tell the step types apart: content [ ], invite [/ /], offer [[ ]], wait {{ }}, branch { }, exit ([ ]).
 */
import { assertNever } from '../errors.js';
import { describeDuration } from './compile-journey.js';
import { stepLinks, type LinkField } from './journey-graph.js';
import type { JourneyDefinition, JourneyStep } from './journey-schema.js';

/** Words Mermaid reads as syntax when used as a node id. */
const RESERVED_IDS = new Set(['end', 'graph', 'subgraph', 'flowchart', 'click', 'style', 'class', 'classDef', 'linkStyle']);
const ENTRY_NODE = 'journey_start';
const SETTINGS_NODE = 'journey_settings';

/** The journey-wide rules, one per line: name, holdout, quiet hours, frequency cap and what ends the journey. */
function settingsLines(definition: JourneyDefinition): string[] {
  const { holdoutPercent, quietHours, frequencyCap, exitOn } = definition.settings;
  const conversion = exitOn.conversion;
  const where = conversion?.where
    ? ' where ' +
      Object.entries(conversion.where)
        .map(([key, value]) => `${key} = ${Array.isArray(value) ? value.join(' or ') : String(value)}`)
        .join(', ')
    : '';
  return [
    definition.name,
    holdoutPercent > 0 ? `Holdout: ${holdoutPercent} % get nothing, to measure uplift` : 'Holdout: none',
    quietHours
      ? `Quiet hours: ${quietHours.start} to ${quietHours.end} in the user's "${quietHours.timezoneAttribute}" zone, else ${quietHours.timezone ?? 'the ruleset zone'}`
      : 'Quiet hours: none',
    frequencyCap ? `Frequency cap: at most ${frequencyCap.maxSends} sends in ${frequencyCap.days} days, across journeys` : 'Frequency cap: none',
    `Exits on: a tier change, an opt-out${conversion ? `, conversion ${conversion.type}${where}` : ''}`,
  ];
}

const EDGE_LABELS: Record<LinkField, string | undefined> = { next: undefined, engaged: 'engaged', notEngaged: 'not engaged' };

export function renderJourneyMermaid(definition: JourneyDefinition): string {
  const byId = new Map(definition.steps.map((step) => [step.id, step]));
  const lines = [
    'flowchart TD',
    `  %% ${definition.id} (tier ${definition.tier}): ${definition.name}`,
    // The settings shape every step (who is held out, when sends wait, what ends the journey), so a reviewer
    // sees them above the steps; the invisible link keeps the box on top.
    `  ${SETTINGS_NODE}>"${settingsLines(definition).map(escapeLabel).join('<br/>')}"]`,
    `  ${SETTINGS_NODE} ~~~ ${ENTRY_NODE}`,
    `  ${ENTRY_NODE}(("start")) --> ${nodeId(definition.start)}`,
  ];
  for (const step of definition.steps) {
    const text = label(step, byId);
    // An exit shows its description as its label already.
    if (step.description && step.type !== 'exit') text.push(step.description);
    lines.push(`  ${nodeId(step.id)}${shape(step, text)}`);
  }
  for (const step of definition.steps) {
    for (const { field, target } of stepLinks(step)) {
      const text = EDGE_LABELS[field];
      lines.push(`  ${nodeId(step.id)} ${text ? `-- ${text} -->` : '-->'} ${nodeId(target)}`);
    }
  }
  return lines.join('\n') + '\n';
}

function nodeId(stepId: string): string {
  return RESERVED_IDS.has(stepId) ? `${stepId}_step` : stepId;
}

function escapeLabel(text: string): string {
  return text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
}

function label(step: JourneyStep, byId: ReadonlyMap<string, JourneyStep>): string[] {
  switch (step.type) {
    case 'content':
      return [`Content: ${step.templateId}`, `via ${step.channel}`];
    case 'invite':
      return [`Invite to group: ${step.groupId}`, `via ${step.channel}`];
    case 'offer':
      return [
        `Offer: ${step.offerId}`,
        `valid ${describeDuration(step.expiryDays, 0)}, via ${step.channel}`,
        ...(step.allowColdOffer ? [`cold offer allowed: ${step.reason ?? ''}`] : []),
      ];
    case 'wait':
      return [
        step.untilLocalTime !== undefined
          ? `Wait until ${step.untilLocalTime} local time`
          : `Wait ${describeDuration(step.days ?? 0, step.hours ?? 0)}`,
      ];
    case 'branch': {
      const since = byId.get(step.since);
      const subject = since?.type === 'content' ? since.templateId : since?.type === 'invite' ? since.groupId : step.since;
      const verb = step.signal === 'content-opened' ? 'Opened' : step.signal === 'content-completed' ? 'Completed' : 'Joined';
      // A timeout of 0 checks once, typically after a wait step, so "within 0 days" would misread.
      return [
        `${verb} ${subject}?`,
        step.timeoutDays === 0 ? `since ${step.since}` : `within ${describeDuration(step.timeoutDays, 0)} of ${step.since}`,
      ];
    }
    case 'exit':
      return [step.description ?? 'Exit'];
    default:
      return assertNever(step, 'journey step');
  }
}

function shape(step: JourneyStep, lines: string[]): string {
  const text = `"${lines.map(escapeLabel).join('<br/>')}"`;
  switch (step.type) {
    case 'content':
      return `[${text}]`;
    case 'invite':
      return `[/${text}/]`;
    case 'offer':
      return `[[${text}]]`;
    case 'wait':
      return `{{${text}}}`;
    case 'branch':
      return `{${text}}`;
    case 'exit':
      return `([${text}])`;
    default:
      return assertNever(step, 'journey step');
  }
}
