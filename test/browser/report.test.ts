/**
 * report.html in a real browser: it must render every chart with no errors and no network, from one file.
 * Set STRATA_WRITE_SCREENSHOT=1 to refresh docs/report.png (shown in the README) from the fixture summary.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderReportHtml } from '../../functions/local/report-html.js';
import type { SimulationSummary } from '../../functions/local/simulation-summary.js';
import { launchBrowser } from '../helpers/browser.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCREENSHOT = join(REPO, 'docs', 'report.png');

const fixture = (): SimulationSummary =>
  JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'simulation-summary.json'), 'utf8')) as SimulationSummary;

let browser: Browser;
let workDir: string;

beforeAll(async () => {
  browser = await launchBrowser();
  workDir = await mkdtemp(join(tmpdir(), 'strata-report-'));
});

afterAll(async () => {
  await browser?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface OpenedReport {
  page: Page;
  problems: string[];
  requests: string[];
}

async function openReport(summary: SimulationSummary, name: string): Promise<OpenedReport> {
  const file = join(workDir, `${name}.html`);
  await writeFile(file, renderReportHtml(summary));
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page: ${error.message}`));
  page.on('request', (request) => {
    if (request.url() !== pathToFileURL(file).href) requests.push(request.url());
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, problems, requests };
}

const boxOf = async (page: Page, selector: string) => (await page.locator(selector).boundingBox()) ?? { width: 0, height: 0 };

describe('report.html', () => {
  let opened: OpenedReport;

  beforeAll(async () => {
    opened = await openReport(fixture(), 'report');
  });
  afterAll(async () => {
    await opened?.page.close();
  });

  it('loads with no errors and makes no network request', () => {
    expect(opened.problems).toEqual([]);
    expect(opened.requests).toEqual([]);
  });

  it.each(['#tiers-over-time', '#tier-flows', '#journey-0', '#journey-1', '#conversion', '#compare-final', '#compare-moves'])(
    'draws %s with a size and a title',
    async (selector) => {
      const box = await boxOf(opened.page, selector);
      expect(box.width).toBeGreaterThan(100);
      expect(box.height).toBeGreaterThan(50);
      expect(await opened.page.locator(`${selector} > title`).textContent()).not.toBe('');
    },
  );

  it('stacks one area per tier, ladder order from the bottom, with a legend entry for each', async () => {
    const { page } = opened;
    const tiers = await page.locator('#tiers-over-time path.series').evaluateAll((paths) => paths.map((path) => path.getAttribute('data-tier')));
    expect(tiers).toEqual(['visitor', 'member', 'active', 'core']);
    for (const path of await page.locator('#tiers-over-time path.series').all()) {
      const box = await path.boundingBox();
      expect(box?.width).toBeGreaterThan(500);
      expect(box?.height).toBeGreaterThan(0);
    }
    expect(await page.locator('.tier-legend li').allTextContents()).toEqual([
      'Core member 85 at the end (7%)',
      'Active learner 90 at the end (7%)',
      'Member 184 at the end (15%)',
      'Visitor 881 at the end (71%)',
    ]);
    // A date axis, weekly from the first day.
    expect(await page.locator('#tiers-over-time text.axis').allTextContents()).toEqual(
      expect.arrayContaining(['1 Oct 2026', '8 Oct 2026', '15 Oct 2026', '22 Oct 2026', '29 Oct 2026']),
    );
  });

  it('shows every move between tiers, with new users as their own row', async () => {
    const { page } = opened;
    expect(await page.locator('#tier-flows rect.cell').count()).toBe(5 * 4);
    const titles = await page.locator('#tier-flows rect.cell > title').allTextContents();
    expect(titles).toContain('New → Visitor: 1,240 users');
    expect(titles).toContain('Visitor → Member: 420 users');
    expect(titles).toContain('Core member → Active learner: 6 users');
    expect(titles).toContain('Member → Member: no change');
  });

  it('draws each journey as a funnel: entered, one bar per step, converted', async () => {
    const { page } = opened;
    expect(await page.locator('svg.funnel').count()).toBe(2);
    for (const [selector, steps] of [
      ['#journey-0', 3],
      ['#journey-1', 4],
    ] as const) {
      expect(await page.locator(`${selector} rect.bar-entered`).count()).toBe(1);
      expect(await page.locator(`${selector} rect.bar-sent`).count()).toBe(steps);
      expect(await page.locator(`${selector} rect.bar-deferred`).count()).toBe(steps);
      expect(await page.locator(`${selector} rect.bar-exited`).count()).toBe(steps);
      expect(await page.locator(`${selector} rect.bar-converted`).count()).toBe(1);
    }
    const entered = await boxOf(page, '#journey-0 rect.bar-entered');
    const sent = await page.locator('#journey-0 rect.bar-sent').evaluateAll((bars) => bars.map((bar) => bar.getBoundingClientRect().width));
    // The funnel narrows: 452 entered, then 398, 341, 262 sent.
    expect(sent[0]).toBeLessThan(entered.width);
    expect(sent).toEqual([...sent].sort((a, b) => b - a));
    expect(await page.locator('#journey-0 rect.bar-sent > title').allTextContents()).toEqual([
      '1. live_session_replay: 398 sent',
      '2. members_group: 341 sent',
      '3. member_price: 262 sent',
    ]);
  });

  it('compares treated and holdout conversion for each journey', async () => {
    const { page } = opened;
    expect(await page.locator('#conversion rect.bar-treated').count()).toBe(2);
    expect(await page.locator('#conversion rect.bar-holdout').count()).toBe(2);
    const text = await page.locator('#conversion').textContent();
    expect(text).toContain('15.0%'); // member-nurture treated: 61 of 407
    expect(text).toContain('6.7%'); // member-nurture holdout: 3 of 45
    // 61 of 407 against 3 of 45: Newcombe's interval crosses 0, and the report calls it a difference, never an uplift.
    expect(text).toContain('difference +8.3 pts (95% interval −3.3 to +14.1)');
    expect(text).toContain('too few to tell'); // active-practice: 21 held out
    expect(text).not.toContain('uplift');
    expect(await page.locator('#conversion').textContent()).toBeTruthy();
    expect(await page.locator('section', { hasText: 'Conversion: treated vs holdout' }).textContent()).toContain('does not react to sends');
  });

  it('shows the headline numbers', async () => {
    const { page } = opened;
    const headline = async (metric: string) => page.locator(`[data-metric="${metric}"] .value`).textContent();
    expect(await headline('users')).toBe('1,240');
    expect(await headline('promotions')).toBe('715');
    expect(await headline('grace-started')).toBe('164');
    expect(await headline('grace-cleared')).toBe('51');
    expect(await headline('demotions')).toBe('113');
    expect(await page.locator('header').textContent()).toContain('18,432 events applied');
  });

  it('shows the comparison: users moved, up, down, final tiers and the move matrix', async () => {
    const { page } = opened;
    expect(await page.locator('#comparison [data-metric="users-moved"] .value').textContent()).toBe('59');
    expect(await page.locator('#comparison [data-metric="moved-up"] .value').textContent()).toBe('53');
    expect(await page.locator('#comparison [data-metric="moved-down"] .value').textContent()).toBe('6');
    expect(await page.locator('#compare-final rect.bar-baseline').count()).toBe(4);
    expect(await page.locator('#compare-final rect.bar-candidate').count()).toBe(4);
    expect(await page.locator('#compare-moves rect.cell').count()).toBe(4 * 4);
    expect(await page.locator('#compare-moves rect.cell > title').allTextContents()).toContain('Visitor → Member: 39 users');
  });

  it('names both sides and says which is the change, per journey before and after, user by user and on ship day', async () => {
    const { page } = opened;
    const lede = await page.locator('#comparison > p.lede').first().textContent();
    expect(lede).toContain('Baseline: rules-live @ v1.4.0');
    expect(lede).toContain('The change: rules-next @ v1.4.0-3-g9d2e1f0');
    const journeys = await page.locator('#compare-journeys tbody tr').allTextContents();
    expect(journeys).toHaveLength(2);
    expect(journeys[0]).toContain('452 → 497');
    expect(journeys[0]).toContain('member_price 262 → 285');
    expect(journeys[0]).toContain('64 → 70');
    expect(await page.locator('#comparison [data-metric="ship-promoted"] .value').textContent()).toBe('41');
    expect(await page.locator('#comparison [data-metric="ship-grace"] .value').textContent()).toBe('3');
    expect(await page.locator('#ship-day-users tbody tr').allTextContents()).toEqual([
      'user-00017promoted at onceVisitorMember',
      'user-00311enters grace (until 2026-11-20)Active learnerActive learner',
    ]);
    expect(await page.locator('#compare-users tbody tr').count()).toBe(3);
    expect(await page.locator('#compare-users tbody tr').first().textContent()).toBe('user-00017VisitorMember');
  });

  it('shows a tier that only the change has in every chart', async () => {
    const summary = fixture();
    const compare = summary.compare!;
    compare.tiers = [...compare.tiers, { id: 'ambassador', name: 'Ambassador' }];
    compare.finalTiers = { ...compare.finalTiers, core: 82, ambassador: 5 };
    compare.moves = [...compare.moves, { from: 'core', to: 'ambassador', count: 5 }];
    const { page, problems } = await openReport(summary, 'new-tier');
    expect(problems).toEqual([]);
    expect(await page.locator('#compare-final rect.bar-candidate > title').allTextContents()).toContain('Ambassador, other rules: 5');
    expect(await page.locator('#compare-moves rect.cell').count()).toBe(5 * 5);
    expect(await page.locator('#tiers-over-time path.series[data-tier="ambassador"]').count()).toBe(1);
    expect(await page.locator('#tier-flows rect.cell').count()).toBe(6 * 5);
    await page.close();
  });

  it('saves a screenshot for the README when asked to', async () => {
    if (process.env['STRATA_WRITE_SCREENSHOT'] !== '1') return;
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await opened.page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
  });
});

describe('report.html with hostile or sparse input', () => {
  it('escapes every string from the summary', async () => {
    const summary = fixture();
    const hostile = '<img src=x onerror="window.__pwned=1">';
    summary.tiers[1] = { id: 'member', name: hostile };
    summary.rulesetVersion = '</code><script>window.__pwned=2</script>';
    summary.journeys[0]!.journeyId = '</svg><script>window.__pwned=3</script>';
    summary.journeys[0]!.steps[0]!.stepId = '"><script>window.__pwned=4</script>';
    const { page, problems } = await openReport(summary, 'hostile');
    expect(problems).toEqual([]);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(0);
    expect(await page.locator('.tier-legend').textContent()).toContain(hostile);
    await page.close();
  });

  it('leaves out the comparison when there is none, and says when a journey has no holdout', async () => {
    const summary = fixture();
    delete summary.compare;
    summary.journeys[1]!.heldOut = 0;
    summary.journeys[1]!.observed.heldOut = { users: 0, converted: 0, rate: null };
    summary.journeys[1]!.observed.difference = null;
    const { page, problems } = await openReport(summary, 'no-compare');
    expect(problems).toEqual([]);
    expect(await page.locator('#comparison').count()).toBe(0);
    expect(await page.locator('#conversion rect.bar-holdout').count()).toBe(1);
    expect(await page.locator('#conversion').textContent()).toContain('no holdout group');
    await page.close();
  });

  it('cuts a label too long for its column and shows it whole on hover', async () => {
    const summary = fixture();
    const longStepId = 'send_the_recording_of_the_autumn_open_day_to_everyone_who_missed_it';
    summary.journeys[0]!.steps[0]!.stepId = longStepId;
    const { page, problems } = await openReport(summary, 'long-label');
    expect(problems).toEqual([]);
    const label = page.locator('#journey-0 text.bar-label', { hasText: 'send_the' });
    expect(await label.locator('title').textContent()).toBe(`1. ${longStepId}`);
    expect(await label.evaluate((element) => element.lastChild?.textContent)).toBe('1. send_the_recording_of_the_…');
    await page.close();
  });

  it('draws a single day as a band', async () => {
    const summary = fixture();
    summary.days = summary.days.slice(-1);
    summary.firstDate = summary.lastDate;
    const { page, problems } = await openReport(summary, 'one-day');
    expect(problems).toEqual([]);
    const box = await boxOf(page, '#tiers-over-time path.series[data-tier="visitor"]');
    expect(box.width).toBeGreaterThan(500);
    await page.close();
  });
});
