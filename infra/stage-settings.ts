/**
 * Per-stage settings of the stack, from `cdk.json` context (or `cdk synth -c key=value`), with defaults.
 *
 * Values given with `-c` arrive as strings, so lists accept JSON or comma-separated text and numbers accept
 * digits. Every problem is reported at once, naming the context key.
 */
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { DEFAULT_REVIEW_SHARDS, MAX_REVIEW_SHARDS } from '../functions/aws/table-schema.js';
import { isValidTimeZone } from '../functions/core/dates.js';

export interface StageSettings {
  /** Event sources that other accounts may put on the bus; empty = any source from the listed accounts. */
  allowedSources: string[];
  /** AWS accounts (12 digits) allowed to put events on the bus besides this one. */
  allowedAccounts: string[];
  /** EventBridge Scheduler cron expression for the nightly review, `cron(minutes hours day month weekday year)`. */
  reviewSchedule: string;
  /** IANA time zone of the schedule; defaults to the ruleset's time zone so "nightly" means the users' night. */
  reviewTimeZone: string | undefined;
  /** Retention of every log group, in days (one of CloudWatch's allowed values). */
  logRetentionDays: RetentionDays;
  /** Partitions of the review index per date: the unit of the nightly fan-out. */
  reviewShards: number;
  /** How many shards the review state machine reviews at once. */
  reviewMapConcurrency: number;
  /** The most ingest functions the SQS event source runs at once (Lambda's `maxConcurrency`). */
  ingestMaxConcurrency: number;
  /** An address subscribed to the alarm topic by email; none = subscribe your own endpoints to the topic. */
  alarmEmail: string | undefined;
}

export const CONTEXT_KEYS = {
  allowedSources: 'allowedSources',
  allowedAccounts: 'allowedAccounts',
  reviewSchedule: 'reviewSchedule',
  reviewTimeZone: 'reviewTimeZone',
  logRetentionDays: 'logRetentionDays',
  reviewShards: 'reviewShards',
  reviewMapConcurrency: 'reviewMapConcurrency',
  ingestMaxConcurrency: 'ingestMaxConcurrency',
  alarmEmail: 'alarmEmail',
} as const;

export const DEFAULT_STAGE_SETTINGS: StageSettings = {
  allowedSources: [],
  allowedAccounts: [],
  // 03:30 local time: after the day's last events, before anyone wakes up. Not 02:30, which does not exist on
  // the night clocks spring forward in US and EU zones, and Scheduler skips a time that does not exist.
  reviewSchedule: 'cron(30 3 * * ? *)',
  reviewTimeZone: undefined,
  logRetentionDays: RetentionDays.ONE_MONTH,
  reviewShards: DEFAULT_REVIEW_SHARDS,
  reviewMapConcurrency: 8,
  // Leaves most of an account's default 1,000 for the journey-step function and everything else.
  ingestMaxConcurrency: 20,
  alarmEmail: undefined,
};

/** Our own sources on the bus; a producer may not claim them, or it could forge tier notices and journey actions. */
export { RESERVED_SOURCE_PREFIX } from '../functions/core/event-pattern.js';
import { RESERVED_SOURCE_PREFIX } from '../functions/core/event-pattern.js';

export class StageSettingsError extends Error {
  override readonly name = 'StageSettingsError';
  constructor(readonly problems: string[]) {
    super(`StageSettings: ${problems.length} problem(s) in the cdk.json context:\n` + problems.map((p) => `  - ${p}`).join('\n'));
  }
}

function stringList(key: string, value: unknown, problems: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  let list: unknown = value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('[')) {
      try {
        list = JSON.parse(text);
      } catch {
        problems.push(`${key}: "${value}" is neither a JSON list nor comma-separated text`);
        return undefined;
      }
    } else list = text === '' ? [] : text.split(',').map((item) => item.trim());
  }
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string' && item !== '')) {
    problems.push(`${key}: must be a list of non-empty strings`);
    return undefined;
  }
  return list as string[];
}

function wholeNumber(key: string, value: unknown, min: number, max: number, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const number = typeof value === 'string' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) {
    problems.push(`${key}: must be a whole number from ${min} to ${max}, found ${JSON.stringify(value)}`);
    return undefined;
  }
  return number;
}

/** Accepts `cron(...)` or its six bare fields; Scheduler's cron has six fields, with `?` in day or weekday. */
export function normalizeCron(key: string, value: unknown, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    problems.push(`${key}: must be a cron expression string`);
    return undefined;
  }
  const inner = /^cron\((.*)\)$/.exec(value.trim())?.[1] ?? value.trim();
  const fields = inner.split(/\s+/);
  if (fields.length !== 6) {
    problems.push(`${key}: "${value}" must have six fields, "cron(minutes hours day-of-month month day-of-week year)", e.g. "cron(30 3 * * ? *)"`);
    return undefined;
  }
  if (fields[2] !== '?' && fields[4] !== '?') {
    problems.push(`${key}: "${value}" needs "?" in day-of-month or day-of-week, e.g. "cron(30 3 * * ? *)"`);
    return undefined;
  }
  return `cron(${fields.join(' ')})`;
}

const RETENTION_VALUES = new Set<number>(Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'));

export function readStageSettings(node: Node): StageSettings {
  const problems: string[] = [];
  const context = (key: string): unknown => node.tryGetContext(key);

  const allowedSources = stringList(CONTEXT_KEYS.allowedSources, context(CONTEXT_KEYS.allowedSources), problems);
  for (const source of allowedSources ?? []) {
    if (source.startsWith(RESERVED_SOURCE_PREFIX))
      problems.push(`${CONTEXT_KEYS.allowedSources}: "${source}" is reserved (sources starting "${RESERVED_SOURCE_PREFIX}" are Strata's own)`);
  }
  const allowedAccounts = stringList(CONTEXT_KEYS.allowedAccounts, context(CONTEXT_KEYS.allowedAccounts), problems);
  for (const account of allowedAccounts ?? []) {
    if (!/^\d{12}$/.test(account)) problems.push(`${CONTEXT_KEYS.allowedAccounts}: "${account}" is not a 12-digit AWS account id`);
  }
  const reviewSchedule = normalizeCron(CONTEXT_KEYS.reviewSchedule, context(CONTEXT_KEYS.reviewSchedule), problems);
  const reviewTimeZone = context(CONTEXT_KEYS.reviewTimeZone);
  if (reviewTimeZone !== undefined && (typeof reviewTimeZone !== 'string' || !isValidTimeZone(reviewTimeZone))) {
    problems.push(`${CONTEXT_KEYS.reviewTimeZone}: ${JSON.stringify(reviewTimeZone)} is not an IANA time zone such as "Asia/Shanghai"`);
  }
  const logRetentionDays = wholeNumber(CONTEXT_KEYS.logRetentionDays, context(CONTEXT_KEYS.logRetentionDays), 1, 3653, problems);
  if (logRetentionDays !== undefined && !RETENTION_VALUES.has(logRetentionDays)) {
    problems.push(
      `${CONTEXT_KEYS.logRetentionDays}: ${logRetentionDays} is not a CloudWatch retention; use one of ${[...RETENTION_VALUES]
        .filter((v) => v > 0)
        .sort((a, b) => a - b)
        .join(', ')}`,
    );
  }
  const reviewShards = wholeNumber(CONTEXT_KEYS.reviewShards, context(CONTEXT_KEYS.reviewShards), 1, MAX_REVIEW_SHARDS, problems);
  const reviewMapConcurrency = wholeNumber(CONTEXT_KEYS.reviewMapConcurrency, context(CONTEXT_KEYS.reviewMapConcurrency), 1, 40, problems);
  // Lambda's limits for an SQS event source's maximum concurrency.
  const ingestMaxConcurrency = wholeNumber(CONTEXT_KEYS.ingestMaxConcurrency, context(CONTEXT_KEYS.ingestMaxConcurrency), 2, 1000, problems);
  const alarmEmail = context(CONTEXT_KEYS.alarmEmail);
  if (alarmEmail !== undefined && alarmEmail !== '' && (typeof alarmEmail !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail))) {
    problems.push(`${CONTEXT_KEYS.alarmEmail}: ${JSON.stringify(alarmEmail)} is not an email address such as "ops@example.com"`);
  }

  if (problems.length > 0) throw new StageSettingsError(problems);
  const defaults = DEFAULT_STAGE_SETTINGS;
  return {
    allowedSources: allowedSources ?? defaults.allowedSources,
    allowedAccounts: allowedAccounts ?? defaults.allowedAccounts,
    reviewSchedule: reviewSchedule ?? defaults.reviewSchedule,
    reviewTimeZone: (reviewTimeZone as string | undefined) ?? defaults.reviewTimeZone,
    logRetentionDays: (logRetentionDays as RetentionDays | undefined) ?? defaults.logRetentionDays,
    reviewShards: reviewShards ?? defaults.reviewShards,
    reviewMapConcurrency: reviewMapConcurrency ?? defaults.reviewMapConcurrency,
    ingestMaxConcurrency: ingestMaxConcurrency ?? defaults.ingestMaxConcurrency,
    alarmEmail: typeof alarmEmail === 'string' && alarmEmail !== '' ? alarmEmail : defaults.alarmEmail,
  };
}
