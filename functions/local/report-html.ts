/**
 * `report.html`: the simulation summary as one self-contained page for marketers. Everything is inline (CSS and
 * SVG drawn here, no scripts, fonts or network), so the file can be mailed, attached to a pull request or opened
 * from disk. Every string from the summary is escaped: tier names and journey ids come from user config.
 *
 * Native SVG `<title>` elements give every area, bar and cell a hover label and a name for screen readers.
 */
import { REPLAY_HOLDOUT_CAVEAT, describeDifference, describeGroup } from '../replay/holdout-text.js';
import type { JourneyFunnel, RulesetComparison, SimulationSummary, TierFlow } from './simulation-summary.js';

/**
 * A quiet grey-blue for the base tier, then Okabe–Ito colours (safe for the common colour-vision deficiencies), so
 * the ladder reads upward from the mass of newcomers.
 */
const TIER_COLOURS = ['#9AAFC2', '#56B4E9', '#009E73', '#E69F00', '#CC79A7', '#0072B2', '#D55E00', '#6B6B6B'];
const DEFERRED_COLOUR = '#E69F00';
const EXITED_COLOUR = '#8A8F98';
const PROMOTION_COLOUR = '#009E73';
const DEMOTION_COLOUR = '#D55E00';
const ENTRY_COLOUR = '#0072B2';
const HOLDOUT_COLOUR = '#9AAFC2';
const NEUTRAL_COLOUR = '#4A5568';
const TREATED_COLOUR = '#0072B2';
const INK_COLOUR = '#1F2933';
const CHART_WIDTH = 1000;
/** What fits in the 250-unit label column of the bar charts. */
const LABEL_CHARS = 30;
const NEW_USERS_LABEL = 'New';

interface TierStyle {
  id: string;
  name: string;
  colour: string;
  rank: number;
}

/** What differs between the replay's report and production's (`strata report`): the words around the same charts. */
export interface ReportPresentation {
  title: string;
  subtitle: string;
  headline: Array<{ label: string; value: number; key: string; note: string }>;
  conversionLede: string;
}

function simulationPresentation(summary: SimulationSummary): ReportPresentation {
  const { promotions, graceStarted, graceCleared, demotions } = summary.transitions;
  return {
    title: 'Strata simulation report',
    subtitle: `${count(summary.events.applied)} events applied, ${count(summary.events.duplicates)} duplicates ignored, ${count(summary.events.skippedLines)} lines skipped, ${count(summary.events.rejected)} events rejected by ingest`,
    headline: [
      { label: 'Users', value: summary.users, key: 'users', note: 'distinct users in the events' },
      { label: 'Promotions', value: promotions, key: 'promotions', note: 'moves up the ladder' },
      { label: 'Grace entries', value: graceStarted, key: 'grace-started', note: 'users who stopped qualifying and entered grace' },
      { label: 'Graces cleared', value: graceCleared, key: 'grace-cleared', note: 'users who re-qualified during grace' },
      { label: 'Demotions', value: demotions, key: 'demotions', note: 'moves down when grace ran out' },
    ],
    conversionLede: `Share of users who converted within the same window after entering the journey: until they left the tier, the journey's planned length ended or the replay ended. ${REPLAY_HOLDOUT_CAVEAT}`,
  };
}

export function renderReportHtml(summary: SimulationSummary, presentation: ReportPresentation = simulationPresentation(summary)): string {
  const tiers = tierStyles(summary);
  const sections = [
    headlineSection(presentation),
    section(
      'Tiers over time',
      `Users in each tier at the end of each day, ${formatDate(summary.firstDate)} to ${formatDate(summary.lastDate)}.`,
      tiersOverTime(summary, tiers) + tierLegend(tiers, summary.finalTiers),
    ),
    section(
      'Moves between tiers',
      'Every tier change in the run: where users came from (rows) and where they went (columns).',
      flowMatrix('tier-flows', 'Moves between tiers', summary.flows, tiers, true),
    ),
    journeySection(summary.journeys, tiers),
    conversionSection(summary.journeys, tiers, presentation.conversionLede),
    summary.compare ? comparisonSection(summary, summary.compare, tiers) : '',
  ];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(presentation.title)}: ${escapeHtml(formatDate(summary.firstDate))} to ${escapeHtml(formatDate(summary.lastDate))}</title>
<style>${STYLES}</style>
</head>
<body>
<header>
  <h1>${escapeHtml(presentation.title)}</h1>
  <p class="subtitle">${escapeHtml(formatDate(summary.firstDate))} – ${escapeHtml(formatDate(summary.lastDate))} · ruleset <code>${escapeHtml(summary.rulesetVersion)}</code> ·
  ${escapeHtml(presentation.subtitle)}</p>
</header>
<main>
${sections.filter(Boolean).join('\n')}
</main>
</body>
</html>
`;
}

// ---- Sections ----------------------------------------------------------------------------------------------

function headlineSection(presentation: ReportPresentation): string {
  return `<section class="headline" aria-label="Headline numbers">
${presentation.headline.map((item) => metric(item.label, item.value, item.key, item.note)).join('\n')}
</section>`;
}

function metric(label: string, value: number, key: string, explanation: string): string {
  return `<div class="metric" data-metric="${escapeHtml(key)}"><div class="value">${count(value)}</div><div class="label">${escapeHtml(label)}</div><div class="note">${escapeHtml(explanation)}</div></div>`;
}

function section(title: string, lede: string, body: string, id?: string): string {
  return `<section class="card"${id ? ` id="${escapeHtml(id)}"` : ''}>
<h2>${escapeHtml(title)}</h2>
<p class="lede">${escapeHtml(lede)}</p>
${body}
</section>`;
}

function journeySection(journeys: JourneyFunnel[], tiers: Map<string, TierStyle>): string {
  if (journeys.length === 0) return section('Journeys', 'No journey ran in this simulation.', '');
  const legend = legendList([
    { label: 'Entered', colour: NEUTRAL_COLOUR },
    { label: 'Sent, in the tier’s colour', colour: stripes(journeys.map((journey) => tiers.get(journey.tier)?.colour ?? TIER_COLOURS[0]!)) },
    { label: 'Deferred (quiet hours or frequency cap)', colour: DEFERRED_COLOUR },
    { label: 'Exited at this step', colour: EXITED_COLOUR },
  ]);
  const funnels = journeys.map((journey, index) => journeyFunnel(journey, index, tiers)).join('\n');
  return section(
    'Journey funnels',
    'How far users got through each tier’s journey: entered, then sent at each step.',
    legend + `<div class="funnels">${funnels}</div>`,
  );
}

function conversionSection(journeys: JourneyFunnel[], tiers: Map<string, TierStyle>, lede: string): string {
  if (journeys.length === 0) return '';
  return section(
    'Conversion: treated vs holdout',
    lede,
    legendList([
      { label: 'Treated (received the journey)', colour: TREATED_COLOUR },
      { label: 'Holdout (received nothing)', colour: HOLDOUT_COLOUR },
    ]) +
      conversionChart(journeys, tiers) +
      dataTable(
        'conversion-table',
        ['Journey', 'Observed for', 'Treated converted', 'Held out converted', 'Treated − held out'],
        journeys.map((journey) => [
          journey.journeyId,
          journey.observed.horizonDays === null ? 'the tier stay' : `${journey.observed.horizonDays} days`,
          describeGroup(journey.observed.treated),
          describeGroup(journey.observed.heldOut),
          describeDifference(journey.observed),
        ]),
      ),
  );
}

/** A plain table; every cell is escaped. */
function dataTable(id: string, header: string[], rows: string[][]): string {
  const head = `<tr>${header.map((cell) => `<th scope="col">${escapeHtml(cell)}</th>`).join('')}</tr>`;
  const body = rows.map((row) => `<tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`).join('');
  return `<table class="data" id="${escapeHtml(id)}"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

function comparisonSection(summary: SimulationSummary, compare: RulesetComparison, tiers: Map<string, TierStyle>): string {
  const cards = `<div class="headline compact" aria-label="Comparison numbers">
${[
  metric('Users moved', compare.usersMoved, 'users-moved', 'end in a different tier with the other rules'),
  metric('Up', compare.up, 'moved-up', 'end higher'),
  metric('Down', compare.down, 'moved-down', 'end lower'),
].join('\n')}
</div>`;
  const side = (named: RulesetComparison['baseline']): string =>
    `${named.label}${named.describe ? ` @ ${named.describe}` : ''} (ruleset ${named.rulesetVersion})`;
  const lede = `The same events under two rulesets. Baseline: ${side(compare.baseline)}. The change: ${side(compare.candidate)}.`;
  const pair = (before: number | undefined, after: number | undefined): string =>
    `${before === undefined ? '–' : count(before)} → ${after === undefined ? '–' : count(after)}`;
  const journeyRows = compare.journeys.map((journey) => {
    const steps = [...new Set([...Object.keys(journey.before?.sent ?? {}), ...Object.keys(journey.after?.sent ?? {})])];
    return [
      `${tiers.get(journey.tier)?.name ?? journey.tier} (${journey.after?.journeyId ?? journey.before?.journeyId ?? ''})`,
      pair(journey.before?.entered, journey.after?.entered),
      steps.map((step) => `${step} ${pair(journey.before?.sent[step], journey.after?.sent[step])}`).join(' · '),
      pair(journey.before?.converted, journey.after?.converted),
    ];
  });
  const shipKinds: Record<string, string> = {
    promoted: 'promoted at once',
    'grace-started': 'enters grace',
    demoted: 'demoted',
    'tier-removed': 'tier removed by the change',
  };
  const tierName = (id: string): string => tiers.get(id)?.name ?? id;
  const ship = compare.shipDay;
  const LISTED = 100;
  return section(
    'Comparison with the other rules',
    lede,
    cards +
      `<h3>Final tiers</h3>` +
      legendList([
        { label: `Baseline: ${compare.baseline.label}`, colour: NEUTRAL_COLOUR },
        { label: `The change: ${compare.candidate.label}`, colour: `repeating-linear-gradient(45deg, ${NEUTRAL_COLOUR} 0 3px, #FFFFFF 3px 6px)` },
      ]) +
      finalTierComparison(summary.finalTiers, compare.finalTiers, tiers) +
      `<h3>Who ends where</h3>` +
      flowMatrix('compare-moves', 'Final tier with the baseline rules (rows) and with the change (columns)', compare.moves, tiers, false) +
      `<h3>Journeys, before → after</h3>` +
      dataTable('compare-journeys', ['Journey', 'Entered', 'Sent per step', 'Converted'], journeyRows) +
      `<h3 id="ship-day">On the day the change ships</h3>` +
      `<p class="lede">Every user judged once by the new rules, from where the baseline leaves them at the end of the history, as the first review after the deploy would.</p>` +
      `<div class="headline compact" aria-label="Ship-day numbers">${[
        metric('Promoted at once', ship.promoted, 'ship-promoted', 'qualify higher under the change'),
        metric('Enter grace', ship.graceStarted, 'ship-grace', 'no longer qualify; grace starts'),
        metric('Demoted', ship.demoted, 'ship-demoted', 'drop at once'),
      ].join('\n')}</div>` +
      dataTable(
        'ship-day-users',
        ['User', 'What happens', 'From', 'To'],
        ship.users
          .slice(0, LISTED)
          .map((user) => [
            user.userId,
            `${shipKinds[user.kind] ?? user.kind}${user.graceUntil ? ` (until ${user.graceUntil})` : ''}`,
            tierName(user.from),
            tierName(user.to),
          ]),
      ) +
      (ship.users.length > LISTED ? `<p class="muted">First ${LISTED} of ${count(ship.users.length)}; all are in summary.json.</p>` : '') +
      `<h3>Users who end in a different tier</h3>` +
      dataTable(
        'compare-users',
        ['User', 'Baseline', 'The change'],
        compare.users.slice(0, LISTED).map((user) => [user.userId, tierName(user.from), tierName(user.to)]),
      ) +
      (compare.users.length > LISTED
        ? `<p class="muted">First ${LISTED} of ${count(compare.users.length)}; all are in summary.json and in the --moves-csv file.</p>`
        : ''),
    'comparison',
  );
}

// ---- Charts ------------------------------------------------------------------------------------------------

function tiersOverTime(summary: SimulationSummary, tiers: Map<string, TierStyle>): string {
  const days = summary.days;
  if (days.length === 0) return '<p class="muted">No days were simulated.</p>';
  const height = 320;
  const plot = { left: 56, right: CHART_WIDTH - 16, top: 12, bottom: height - 34 };
  const totals = days.map((day) => [...tiers.keys()].reduce((total, id) => total + (day.tiers[id] ?? 0), 0));
  const scale = niceScale(Math.max(1, ...totals));
  const x = (index: number): number => (days.length < 2 ? plot.left : plot.left + ((plot.right - plot.left) * index) / (days.length - 1));
  const y = (value: number): number => plot.bottom - ((plot.bottom - plot.top) * value) / scale.max;

  const below = days.map(() => 0);
  const areas = [...tiers.values()].map((tier) => {
    const lower = [...below];
    days.forEach((day, index) => (below[index] = below[index]! + (day.tiers[tier.id] ?? 0)));
    // A single day is drawn as a band across the chart rather than a zero-width sliver.
    const xs = days.length < 2 ? [plot.left, plot.right] : days.map((_, index) => x(index));
    const upperPoints = xs.map((px, index) => `${round(px)},${round(y(below[Math.min(index, days.length - 1)]!))}`);
    const lowerPoints = xs.map((px, index) => `${round(px)},${round(y(lower[Math.min(index, days.length - 1)]!))}`).reverse();
    const final = summary.finalTiers[tier.id] ?? 0;
    return `<path class="series" data-tier="${escapeHtml(tier.id)}" d="M${upperPoints.join('L')}L${lowerPoints.join('L')}Z" fill="${tier.colour}" stroke="#fff" stroke-width="0.75"><title>${escapeHtml(tier.name)}: ${count(final)} users at the end</title></path>`;
  });

  const grid = scale.ticks
    .map(
      (tick) =>
        `<line x1="${plot.left}" x2="${plot.right}" y1="${round(y(tick))}" y2="${round(y(tick))}" class="grid"/><text x="${plot.left - 8}" y="${round(y(tick)) + 4}" class="axis" text-anchor="end">${count(tick)}</text>`,
    )
    .join('');
  const dateTicks = dateTickIndexes(days.length)
    .map(
      (index) =>
        `<line x1="${round(x(index))}" x2="${round(x(index))}" y1="${plot.bottom}" y2="${plot.bottom + 5}" class="tick"/><text x="${round(x(index))}" y="${plot.bottom + 20}" class="axis" text-anchor="middle">${escapeHtml(formatDate(days[index]!.date))}</text>`,
    )
    .join('');
  const columnWidth = days.length < 2 ? plot.right - plot.left : (plot.right - plot.left) / (days.length - 1);
  const hoverColumns = days
    .map((day, index) => {
      const label = [...tiers.values()].map((tier) => `${tier.name} ${count(day.tiers[tier.id] ?? 0)}`).join(', ');
      return `<rect class="day" x="${round(Math.max(plot.left, x(index) - columnWidth / 2))}" y="${plot.top}" width="${round(Math.min(columnWidth, plot.right - plot.left))}" height="${plot.bottom - plot.top}"><title>${escapeHtml(formatDate(day.date))}: ${escapeHtml(label)}</title></rect>`;
    })
    .join('');
  return svgChart(
    'tiers-over-time',
    'Users in each tier per day',
    `Stacked areas, one per tier, from ${summary.firstDate} to ${summary.lastDate}.`,
    height,
    `${grid}${areas.join('')}${dateTicks}<g class="hover">${hoverColumns}</g>`,
  );
}

function tierLegend(tiers: Map<string, TierStyle>, finalTiers: Record<string, number>): string {
  const total = Object.values(finalTiers).reduce((sum, value) => sum + value, 0);
  const entry = (tier: TierStyle) => {
    const final = finalTiers[tier.id] ?? 0;
    return {
      label: tier.name,
      colour: tier.colour,
      value: `${count(final)} at the end${total > 0 ? ` (${Math.round((100 * final) / total)}%)` : ''}`,
    };
  };
  // Listed top tier first, as the areas are stacked.
  return legendList([...tiers.values()].reverse().map(entry), 'tier-legend');
}

/** A from → to heatmap. Moves up the ladder are green, down orange, entries blue; darker means more users. */
function flowMatrix(id: string, title: string, flows: TierFlow[], tiers: Map<string, TierStyle>, withNewUsers: boolean): string {
  const columns = [...tiers.values()];
  const rows: Array<TierStyle | null> = withNewUsers ? [null, ...columns] : columns;
  const counts = new Map(flows.map((flow) => [`${flow.from ?? ''}>${flow.to}`, flow.count]));
  // Entries dwarf moves, so each is shaded against its own largest count.
  const largestEntry = Math.max(1, ...flows.filter((flow) => flow.from === null).map((flow) => flow.count));
  const largestMove = Math.max(1, ...flows.filter((flow) => flow.from !== null).map((flow) => flow.count));
  const cell = { width: 120, height: 44 };
  const labelWidth = 150;
  const top = 34;
  const width = labelWidth + columns.length * cell.width + 8;
  const height = top + rows.length * cell.height + 8;
  const rowName = (row: TierStyle | null): string => row?.name ?? NEW_USERS_LABEL;

  const header = columns
    .map((column, index) =>
      svgText(column.name, {
        x: labelWidth + index * cell.width + cell.width / 2,
        y: top - 12,
        className: 'matrix-label',
        maxChars: 15,
        anchor: 'middle',
      }),
    )
    .join('');
  const body = rows
    .map((row, rowIndex) => {
      const y = top + rowIndex * cell.height;
      const label = svgText(rowName(row), { x: labelWidth - 12, y: y + cell.height / 2 + 5, className: 'matrix-label', maxChars: 17, anchor: 'end' });
      const cells = columns.map((column, columnIndex) => {
        const x = labelWidth + columnIndex * cell.width;
        const same = row?.id === column.id;
        const value = counts.get(`${row?.id ?? ''}>${column.id}`) ?? 0;
        const hue = row === null ? ENTRY_COLOUR : column.rank > row.rank ? PROMOTION_COLOUR : DEMOTION_COLOUR;
        const strength = same || value === 0 ? 0 : 0.15 + 0.85 * Math.sqrt(value / (row === null ? largestEntry : largestMove));
        const fill = same ? '#F1F3F5' : mix('#FFFFFF', hue, strength);
        // A class, not a fill attribute, because the stylesheet sets the fill of all SVG text.
        const ink = prefersWhiteText(fill) ? ' on-dark' : '';
        const shown = same ? '–' : value === 0 ? '·' : count(value);
        const what = same ? 'no change' : `${count(value)} user${value === 1 ? '' : 's'}`;
        return `<g><rect class="cell" x="${x + 2}" y="${y + 2}" width="${cell.width - 4}" height="${cell.height - 4}" rx="4" fill="${fill}"><title>${escapeHtml(rowName(row))} → ${escapeHtml(column.name)}: ${escapeHtml(what)}</title></rect><text x="${x + cell.width / 2}" y="${y + cell.height / 2 + 5}" text-anchor="middle" class="cell-value${ink}">${shown}</text></g>`;
      });
      return label + cells.join('');
    })
    .join('');
  const legend = legendList([
    ...(withNewUsers ? [{ label: 'Entering the ladder', colour: ENTRY_COLOUR }] : []),
    { label: 'Moving up', colour: PROMOTION_COLOUR },
    { label: 'Moving down', colour: DEMOTION_COLOUR },
  ]);
  return `<div class="matrix-wrap">${svgChart(id, title, 'Rows are the tier left, columns the tier reached; each cell shows how many users made that move.', height, header + body, width, 'matrix')}</div>${legend}`;
}

function journeyFunnel(journey: JourneyFunnel, index: number, tiers: Map<string, TierStyle>): string {
  const colour = tiers.get(journey.tier)?.colour ?? TIER_COLOURS[0]!;
  const tierName = tiers.get(journey.tier)?.name ?? journey.tier;
  const rows: Array<{
    label: string;
    sublabel: string;
    main: number;
    mainClass: string;
    unit: string;
    deferred?: number;
    exited?: number;
    mainColour: string;
  }> = [
    {
      label: 'Entered',
      sublabel: `${count(journey.heldOut)} held out`,
      main: journey.entered,
      mainClass: 'bar-entered',
      mainColour: NEUTRAL_COLOUR,
      unit: 'entered',
    },
    ...journey.steps.map((step, stepIndex) => ({
      label: `${stepIndex + 1}. ${step.stepId}`,
      sublabel: step.kind,
      main: step.sent,
      mainClass: 'bar-sent',
      unit: step.kind === 'branch' ? 'checked' : 'sent',
      deferred: step.deferred,
      exited: step.exited,
      mainColour: colour,
    })),
    {
      label: 'Converted',
      sublabel: `of ${count(journey.observed.treated.users)} treated users`,
      main: journey.observed.treated.converted,
      mainClass: 'bar-converted',
      mainColour: TREATED_COLOUR,
      unit: 'converted',
    },
  ];
  const labelWidth = 250;
  const valueWidth = 250;
  const rowHeight = 46;
  const height = rows.length * rowHeight + 8;
  const barSpace = CHART_WIDTH - labelWidth - valueWidth;
  const largest = Math.max(1, ...rows.map((row) => Math.max(row.main, (row.deferred ?? 0) + (row.exited ?? 0))));
  const length = (value: number): number => round((barSpace * value) / largest);
  const body = rows
    .map((row, rowIndex) => {
      const y = rowIndex * rowHeight + 6;
      const labels =
        svgText(row.label, { x: 0, y: y + 14, className: 'bar-label', maxChars: LABEL_CHARS }) +
        svgText(row.sublabel, { x: 0, y: y + 31, className: 'bar-sublabel', maxChars: LABEL_CHARS });
      const main = `<rect class="bar ${row.mainClass}" x="${labelWidth}" y="${y}" width="${Math.max(1, length(row.main))}" height="20" rx="3" fill="${row.mainColour}"><title>${escapeHtml(row.label)}: ${count(row.main)} ${row.unit}</title></rect>`;
      const deferred = row.deferred ?? 0;
      const exited = row.exited ?? 0;
      const leakage =
        row.deferred === undefined
          ? ''
          : `<rect class="bar bar-deferred" x="${labelWidth}" y="${y + 24}" width="${length(deferred)}" height="7" fill="${DEFERRED_COLOUR}"><title>${escapeHtml(row.label)}: ${count(deferred)} deferred</title></rect>` +
            `<rect class="bar bar-exited" x="${labelWidth + length(deferred)}" y="${y + 24}" width="${length(exited)}" height="7" fill="${EXITED_COLOUR}"><title>${escapeHtml(row.label)}: ${count(exited)} exited</title></rect>`;
      const detail = row.deferred === undefined ? '' : ` · ${count(deferred)} deferred · ${count(exited)} exited`;
      const valueText = `<text x="${labelWidth + Math.max(1, length(row.main)) + 8}" y="${y + 15}" class="bar-value">${count(row.main)} <tspan class="bar-sublabel">${row.unit}${detail}</tspan></text>`;
      return labels + main + leakage + valueText;
    })
    .join('');
  return `<figure class="funnel-card">
<figcaption><span class="swatch" style="background:${colour}"></span><strong>${escapeHtml(journey.journeyId)}</strong> <span class="muted">for ${escapeHtml(tierName)}</span></figcaption>
${svgChart(`journey-${index}`, `Funnel of journey ${journey.journeyId}`, `Entered ${journey.entered}, then users sent at each step, then converted.`, height, body, CHART_WIDTH, 'funnel')}
</figure>`;
}

function conversionChart(journeys: JourneyFunnel[], tiers: Map<string, TierStyle>): string {
  const rates = journeys.map((journey) => {
    const { treated, heldOut } = journey.observed;
    return { journey, treated, heldOut, treatedRate: treated.rate ?? 0, holdoutRate: heldOut.users > 0 ? (heldOut.rate ?? 0) : undefined };
  });
  const labelWidth = 250;
  const barSpace = CHART_WIDTH - labelWidth - 300;
  const rowHeight = 70;
  const height = rates.length * rowHeight + 8;
  const largest = Math.max(0.01, ...rates.flatMap((rate) => [rate.treatedRate, rate.holdoutRate ?? 0]));
  const length = (rate: number): number => round((barSpace * rate) / largest);
  const body = rates
    .map((rate, rowIndex) => {
      const y = rowIndex * rowHeight + 8;
      const { journey } = rate;
      const tierName = tiers.get(journey.tier)?.name ?? journey.tier;
      const difference = describeDifference(journey.observed);
      const treatedBar = `<rect class="bar bar-treated" x="${labelWidth}" y="${y}" width="${Math.max(1, length(rate.treatedRate))}" height="22" rx="3" fill="${TREATED_COLOUR}"><title>${escapeHtml(journey.journeyId)} treated: ${count(rate.treated.converted)} of ${count(rate.treated.users)} users converted (${percent(rate.treatedRate)})</title></rect><text x="${labelWidth + Math.max(1, length(rate.treatedRate)) + 8}" y="${y + 16}" class="bar-value">${percent(rate.treatedRate)} <tspan class="bar-sublabel">(${count(rate.treated.converted)} of ${count(rate.treated.users)})</tspan></text>`;
      const holdoutBar =
        rate.holdoutRate === undefined
          ? `<text x="${labelWidth}" y="${y + 42}" class="bar-sublabel">no holdout group</text>`
          : `<rect class="bar bar-holdout" x="${labelWidth}" y="${y + 27}" width="${Math.max(1, length(rate.holdoutRate))}" height="22" rx="3" fill="${HOLDOUT_COLOUR}"><title>${escapeHtml(journey.journeyId)} holdout: ${count(rate.heldOut.converted)} of ${count(rate.heldOut.users)} users converted (${percent(rate.holdoutRate)})</title></rect><text x="${labelWidth + Math.max(1, length(rate.holdoutRate)) + 8}" y="${y + 43}" class="bar-value">${percent(rate.holdoutRate)} <tspan class="bar-sublabel">(${count(rate.heldOut.converted)} of ${count(rate.heldOut.users)})</tspan></text>`;
      const labels =
        svgText(journey.journeyId, { x: 0, y: y + 16, className: 'bar-label', maxChars: LABEL_CHARS }) +
        svgText(tierName, { x: 0, y: y + 33, className: 'bar-sublabel', maxChars: LABEL_CHARS }) +
        svgText(difference, { x: 0, y: y + 50, className: 'bar-uplift', maxChars: LABEL_CHARS });
      return labels + treatedBar + holdoutBar;
    })
    .join('');
  return svgChart(
    'conversion',
    'Conversion of treated users and the holdout, per journey',
    'Two bars per journey: the treated conversion rate and the holdout conversion rate.',
    height,
    body,
  );
}

function finalTierComparison(baseline: Record<string, number>, candidate: Record<string, number>, tiers: Map<string, TierStyle>): string {
  const list = [...tiers.values()];
  const labelWidth = 250;
  const barSpace = CHART_WIDTH - labelWidth - 200;
  const rowHeight = 52;
  const height = list.length * rowHeight + 8;
  const largest = Math.max(1, ...list.flatMap((tier) => [baseline[tier.id] ?? 0, candidate[tier.id] ?? 0]));
  const length = (value: number): number => Math.max(1, round((barSpace * value) / largest));
  const body = list
    .map((tier, rowIndex) => {
      const y = rowIndex * rowHeight + 6;
      const before = baseline[tier.id] ?? 0;
      const after = candidate[tier.id] ?? 0;
      const change = after - before;
      return (
        svgText(tier.name, { x: 0, y: y + 16, className: 'bar-label', maxChars: LABEL_CHARS }) +
        `<text x="0" y="${y + 33}" class="bar-sublabel">${change === 0 ? 'no change' : `${change > 0 ? '+' : '−'}${count(Math.abs(change))} with the other rules`}</text>` +
        `<rect class="bar bar-baseline" x="${labelWidth}" y="${y}" width="${length(before)}" height="18" rx="3" fill="${tier.colour}"><title>${escapeHtml(tier.name)}, this run: ${count(before)}</title></rect>` +
        `<text x="${labelWidth + length(before) + 8}" y="${y + 14}" class="bar-value">${count(before)}</text>` +
        `<rect class="bar bar-candidate" x="${labelWidth}" y="${y + 22}" width="${length(after)}" height="18" rx="3" fill="url(#hatch-${rowIndex})"><title>${escapeHtml(tier.name)}, other rules: ${count(after)}</title></rect>` +
        `<text x="${labelWidth + length(after) + 8}" y="${y + 36}" class="bar-value">${count(after)}</text>`
      );
    })
    .join('');
  const patterns = list
    .map(
      (tier, rowIndex) =>
        `<pattern id="hatch-${rowIndex}" width="8" height="8" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="8" height="8" fill="${mix('#FFFFFF', tier.colour, 0.35)}"/><rect width="4" height="8" fill="${tier.colour}"/></pattern>`,
    )
    .join('');
  return svgChart(
    'compare-final',
    'Final users per tier, this run and with the other rules',
    'Two bars per tier: solid for this run, hatched for the other rules.',
    height,
    `<defs>${patterns}</defs>${body}`,
  );
}

// ---- Building blocks ---------------------------------------------------------------------------------------

/** SVG text cannot wrap or ellipsise, so a long label is cut to fit its column and shown whole on hover. */
function svgText(value: string, place: { x: number; y: number; className: string; maxChars: number; anchor?: 'middle' | 'end' }): string {
  const characters = [...value];
  const clipped = characters.length > place.maxChars ? `${characters.slice(0, place.maxChars - 1).join('')}…` : value;
  const tooltip = clipped === value ? '' : `<title>${escapeHtml(value)}</title>`;
  const anchor = place.anchor ? ` text-anchor="${place.anchor}"` : '';
  return `<text x="${round(place.x)}" y="${round(place.y)}" class="${place.className}"${anchor}>${tooltip}${escapeHtml(clipped)}</text>`;
}

/** A CSS background of equal vertical stripes, one per colour. */
function stripes(colours: string[]): string {
  const unique = [...new Set(colours)];
  if (unique.length <= 1) return unique[0] ?? TIER_COLOURS[0]!;
  const share = 100 / unique.length;
  return `linear-gradient(90deg, ${unique.map((colour, index) => `${colour} ${round(index * share)}% ${round((index + 1) * share)}%`).join(', ')})`;
}

function svgChart(id: string, title: string, description: string, height: number, content: string, width = CHART_WIDTH, className = 'chart'): string {
  const titleId = `${id}-title`;
  return `<svg id="${escapeHtml(id)}" class="${className}" viewBox="0 0 ${width} ${height}" width="100%" style="max-width:${width}px" role="img" aria-labelledby="${titleId} ${titleId}-desc" preserveAspectRatio="xMinYMin meet"><title id="${titleId}">${escapeHtml(title)}</title><desc id="${titleId}-desc">${escapeHtml(description)}</desc>${content}</svg>`;
}

/** `colour` is any CSS background: a colour, or a gradient for a swatch that stands for several. */
function legendList(items: Array<{ label: string; colour: string; value?: string }>, className = ''): string {
  const entries = items.map(
    (item) =>
      `<li><span class="swatch" style="background:${item.colour}"></span>${escapeHtml(item.label)}${item.value ? ` <span class="muted">${escapeHtml(item.value)}</span>` : ''}</li>`,
  );
  return `<ul class="legend${className ? ` ${className}` : ''}">${entries.join('')}</ul>`;
}

/** The summary's tiers in ladder order, plus any tier a flow names that the list lacks, so nothing is dropped. */
function tierStyles(summary: SimulationSummary): Map<string, TierStyle> {
  // A tier only the compared rules have still gets its colour and its row in every chart.
  const ladder = [...summary.tiers, ...(summary.compare?.tiers ?? [])];
  const ids = [...new Set(ladder.map((tier) => tier.id))];
  const names = new Map(ladder.reverse().map((tier) => [tier.id, tier.name]));
  const mentioned = [
    ...summary.flows.flatMap((flow) => [flow.from, flow.to]),
    ...(summary.compare?.moves ?? []).flatMap((move) => [move.from, move.to]),
    ...summary.days.flatMap((day) => Object.keys(day.tiers)),
  ];
  for (const id of mentioned) if (id !== null && !ids.includes(id)) ids.push(id);
  return new Map(ids.map((id, rank) => [id, { id, name: names.get(id) || id, colour: TIER_COLOURS[rank % TIER_COLOURS.length]!, rank }]));
}

/** Axis ticks at 1, 2 or 5 × 10^n, four or five of them. */
function niceScale(largest: number): { max: number; ticks: number[] } {
  const rough = largest / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rough) ?? magnitude * 10);
  const max = Math.ceil(largest / step) * step;
  const ticks: number[] = [];
  for (let tick = 0; tick <= max + step / 2; tick += step) ticks.push(Math.round(tick));
  return { max, ticks };
}

/** Weekly ticks from the first day, and the last day when it is not crowded by the previous tick. */
function dateTickIndexes(days: number): number[] {
  if (days === 0) return [];
  const step = days <= 10 ? 1 : days <= 70 ? 7 : Math.ceil(days / 10 / 7) * 7;
  const indexes: number[] = [];
  for (let index = 0; index < days; index += step) indexes.push(index);
  const last = days - 1;
  if (last - indexes[indexes.length - 1]! >= Math.ceil(step / 2)) indexes.push(last);
  return indexes;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** `2026-11-02` → `2 Nov 2026`; anything else is shown as given. */
function formatDate(date: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  const month = match ? MONTHS[Number(match[2]) - 1] : undefined;
  return match && month ? `${Number(match[3])} ${month} ${match[1]}` : date;
}

function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';
}

function percent(rate: number): string {
  return `${(rate * 100).toFixed(1)}%`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** WCAG contrast: white text when it reads better than the page's ink on this background. */
function prefersWhiteText(background: string): boolean {
  const contrast = (a: number, b: number): number => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const shade = luminance(background);
  return contrast(luminance('#FFFFFF'), shade) > contrast(luminance(INK_COLOUR), shade);
}

function luminance(hex: string): number {
  const [red, green, blue] = channels(hex).map((value) => {
    const linear = value / 255;
    return linear <= 0.04045 ? linear / 12.92 : ((linear + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * red + 0.7152 * green + 0.0722 * blue;
}

function channels(hex: string): number[] {
  return [0, 1, 2].map((index) => parseInt(hex.slice(1 + index * 2, 3 + index * 2), 16));
}

/** Blends two #RRGGBB colours: 0 gives `from`, 1 gives `to`. */
function mix(from: string, to: string, amount: number): string {
  const [start, end] = [channels(from), channels(to)];
  const blended = start.map((value, index) => Math.round(value + (end[index]! - value) * amount));
  return `#${blended.map((value) => value.toString(16).padStart(2, '0')).join('')}`;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** For element content and double-quoted attribute values alike: quotes are escaped too. */
function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (character) => ESCAPES[character]!);
}

const STYLES = `
:root { color-scheme: light; --ink: ${INK_COLOUR}; --muted: #5F6B7A; --line: #E4E7EB; --bg: #F6F7F9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header, main { max-width: 1080px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 28px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 2px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.subtitle, .lede, .muted, .note { color: var(--muted); }
.subtitle { margin: 0 0 18px; }
.lede { margin: 0 0 14px; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #E9ECEF; padding: 1px 5px; border-radius: 4px; }
.headline { display: grid; grid-template-columns: repeat(5, 1fr); gap: 12px; margin-bottom: 18px; }
.headline.compact { grid-template-columns: repeat(3, 1fr); max-width: 640px; }
.metric { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.metric .value { font-size: 30px; font-weight: 700; letter-spacing: -0.5px; font-variant-numeric: tabular-nums; }
.metric .label { font-weight: 600; }
.metric .note { font-size: 12.5px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 20px 22px; margin-bottom: 18px; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 0; margin: 8px 0 12px; font-size: 13.5px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; flex: none; }
svg { display: block; height: auto; overflow: visible; }
svg text { font-family: inherit; fill: var(--ink); }
.axis { font-size: 12px; fill: var(--muted); }
.grid { stroke: var(--line); stroke-width: 1; }
.tick { stroke: #9AA5B1; }
.hover rect { fill: transparent; }
.hover rect:hover { fill: rgba(31, 41, 51, 0.06); }
.matrix-label { font-size: 13.5px; font-weight: 600; }
.cell-value { font-size: 15px; font-weight: 600; font-variant-numeric: tabular-nums; pointer-events: none; }
svg text.on-dark { fill: #FFFFFF; }
.matrix-wrap { overflow-x: auto; }
.funnels { display: grid; gap: 14px; }
.funnel-card { margin: 0; padding: 12px 0 0; border-top: 1px solid var(--line); }
.funnel-card figcaption { display: flex; align-items: center; gap: 8px; margin-bottom: 8px; }
.bar-label { font-size: 14px; font-weight: 600; }
.bar-sublabel { font-size: 12.5px; fill: var(--muted); font-weight: 400; }
.bar-uplift { font-size: 12.5px; font-weight: 600; }
table.data { border-collapse: collapse; width: 100%; margin: 12px 0; font-size: 13.5px; }
table.data th, table.data td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #E5E7EB; vertical-align: top; }
table.data th { font-weight: 600; }
.bar-value { font-size: 13.5px; font-weight: 600; font-variant-numeric: tabular-nums; }
@media (max-width: 760px) { .headline { grid-template-columns: repeat(2, 1fr); } }
`;
