/**
 * `strata report --out DIR`'s report.html in a real browser: the simulation's renderer with production's words,
 * drawn from counters as the table holds them, with no errors and no network.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderProductionHtml } from '../../functions/cli/commands/report.js';
import { loadValidRuleset } from '../../functions/cli/commands/simulate.js';
import { COUNTER_NAMES, type CounterDay, buildProductionReport } from '../../functions/core/analytics.js';
import { launchBrowser } from '../helpers/browser.js';

let browser: Browser;
let workDir: string;

beforeAll(async () => {
  browser = await launchBrowser();
  workDir = await mkdtemp(join(tmpdir(), 'strata-production-report-'));
});
afterAll(async () => {
  await browser?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('production report.html', () => {
  it('draws the census over time, the flows, the funnels and the holdout comparison, with production wording', async () => {
    const ruleset = await loadValidRuleset(process.cwd(), 'the ruleset');
    const visitor = ruleset.journeys['visitor']!;
    const member = ruleset.journeys['member']!;
    const firstStep = visitor.steps.find((step) => step.type === 'content')!.id;
    const tierDays: CounterDay[] = [
      {
        date: '2026-03-01',
        counts: {
          [COUNTER_NAMES.census('visitor')]: 400,
          [COUNTER_NAMES.flow('', 'visitor')]: 400,
          [COUNTER_NAMES.enteredTreated(visitor.id)]: 360,
          [COUNTER_NAMES.enteredHeldOut(visitor.id)]: 40,
          [COUNTER_NAMES.convertedTreated(visitor.id)]: 36,
          [COUNTER_NAMES.convertedHeldOut(visitor.id)]: 2,
        },
      },
      {
        date: '2026-03-02',
        counts: {
          [COUNTER_NAMES.census('visitor')]: -20,
          [COUNTER_NAMES.census('member')]: 20,
          [COUNTER_NAMES.flow('visitor', 'member')]: 20,
          [COUNTER_NAMES.enteredTreated(member.id)]: 18,
          [COUNTER_NAMES.enteredHeldOut(member.id)]: 2,
        },
      },
    ];
    const report = buildProductionReport({
      ruleset,
      tierDays,
      journeyDays: {
        [visitor.id]: [{ date: '2026-03-01', counts: { [COUNTER_NAMES.sent(firstStep)]: 350, [COUNTER_NAMES.deferred(firstStep)]: 12 } }],
      },
      snapshots: [],
      firstDate: '2026-03-01',
      lastDate: '2026-03-02',
    });
    const file = join(workDir, 'report.html');
    await writeFile(file, renderProductionHtml(report));
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('request', (request) => {
      if (request.url() !== pathToFileURL(file).href) requests.push(request.url());
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
    expect(await page.locator('h1').textContent()).toBe('Strata production report');
    for (const selector of ['#tiers-over-time', '#tier-flows', '#journey-0', '#conversion']) {
      const box = await page.locator(selector).boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(100);
    }
    expect(await page.locator('#tier-flows rect.cell > title').allTextContents()).toContain('Visitor → Member: 20 users');
    const rows = await page.locator('#conversion-table tbody tr').allTextContents();
    expect(rows.find((row) => row.startsWith(visitor.id))).toMatch(/36 of 360 \(10\.0%\).*2 of 40 \(5\.0%\).*difference \+5\.0 pts \(95% interval/);
    expect(rows.find((row) => row.startsWith(member.id))).toContain('too few to tell');
    expect(await page.locator('body').textContent()).not.toContain('A replayed history');
    await page.close();
  });
});
