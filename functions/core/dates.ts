/**
 * Calendar arithmetic on local dates ('YYYY-MM-DD') in the ruleset's time zone.
 *
 * Windows, grace periods, tenure and review dates are whole local days, so that the nightly review compares
 * dates and never races an instant by a few milliseconds.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

const HOUR_MS = 3_600_000;
const offsetFormatters = new Map<string, Intl.DateTimeFormat>();
/** Zone → UTC hour → the zone's offset throughout that hour, or NaN if it changes within the hour. */
const hourOffsets = new Map<string, Map<number, number>>();

function offsetAt(instantMs: number, timeZone: string): number {
  let formatter = offsetFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetFormatters.set(timeZone, formatter);
  }
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(new Date(instantMs))) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  const wallAsUtc = Date.UTC(parts['year']!, parts['month']! - 1, parts['day']!, parts['hour']!, parts['minute']!, parts['second']!);
  return wallAsUtc - Math.floor(instantMs / 1000) * 1000;
}

/**
 * The local calendar date of an instant in a time zone. Every event and step asks, and Intl formatting costs
 * microseconds, so the zone's offset is found once per UTC hour (checked at both ends of the hour; an hour in
 * which the offset changes falls back to the formatter).
 */
export function localDate(instant: Date | string, timeZone: string): string {
  if (typeof instant === 'string') return localDateOfText(instant, timeZone);
  return localDateOfInstant(instant, timeZone);
}

function localDateOfText(instant: string, timeZone: string): string {
  return localDateOfMs(instantMs(instant), timeZone);
}

const ZERO = 48;
function digit(text: string, at: number): number {
  const value = text.charCodeAt(at) - ZERO;
  return value >= 0 && value <= 9 ? value : NaN;
}

/** Two ASCII digits at `at` as a number, or NaN. */
function twoDigits(text: string, at: number): number {
  const tens = text.charCodeAt(at) - ZERO;
  const ones = text.charCodeAt(at + 1) - ZERO;
  return tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9 ? tens * 10 + ones : NaN;
}

/**
 * Date.parse, with a fast path for the UTC stamps that events, profiles and journeys carry
 * ('2026-03-01T08:15:00Z', '2026-03-01T08:15:00.250Z'): Date.parse costs about a microsecond, and every event and
 * decision parses several. Anything else (other forms, offsets, days past the 28th, years before 1000) is left to
 * Date.parse, so the result is always Date.parse's.
 */
export function instantMs(text: string): number {
  // The same stamp is often read several times in a row (an event's date, then its signals' seconds).
  if (text === lastStamp) return lastStampMs;
  const ms = parseInstant(text);
  lastStamp = text;
  lastStampMs = ms;
  return ms;
}
let lastStamp = '';
let lastStampMs = Number.NaN;

function parseInstant(text: string): number {
  const length = text.length;
  if (
    (length === 20 || length === 24) &&
    text.charCodeAt(length - 1) === 90 /* Z */ &&
    text.charCodeAt(4) === 45 /* - */ &&
    text.charCodeAt(7) === 45 &&
    text.charCodeAt(10) === 84 /* T */ &&
    text.charCodeAt(13) === 58 /* : */ &&
    text.charCodeAt(16) === 58 &&
    (length === 20 || text.charCodeAt(19) === 46) /* . */
  ) {
    const century = twoDigits(text, 0);
    const year = century * 100 + twoDigits(text, 2);
    const month = twoDigits(text, 5);
    const day = twoDigits(text, 8);
    const hour = twoDigits(text, 11);
    const minute = twoDigits(text, 14);
    const second = twoDigits(text, 17);
    const millis = length === 24 ? twoDigits(text, 20) * 10 + digit(text, 22) : 0;
    if (century >= 10 && month >= 1 && month <= 12 && day >= 1 && day <= 28 && hour <= 23 && minute <= 59 && second <= 59 && millis >= 0)
      return Date.UTC(year, month - 1, day, hour, minute, second, millis);
  }
  return Date.parse(text);
}

/**
 * The zone's offset (local wall time minus UTC, in ms) throughout the UTC hour holding `ms`, or NaN when it changes
 * within that hour or `ms` is not a time. Found with Intl once per zone and hour.
 */
export function hourOffsetAt(ms: number, timeZone: string): number {
  const hour = Math.floor(ms / HOUR_MS);
  let offsets = hourOffsets.get(timeZone);
  if (!offsets) {
    offsets = new Map();
    hourOffsets.set(timeZone, offsets);
  }
  let offset = offsets.get(hour);
  if (offset === undefined) {
    if (Number.isNaN(hour)) return NaN;
    const start = offsetAt(hour * HOUR_MS, timeZone);
    offset = start === offsetAt((hour + 1) * HOUR_MS - 1000, timeZone) ? start : NaN;
    if (offsets.size > 100_000) offsets.clear();
    offsets.set(hour, offset);
  }
  return offset;
}

function localDateOfInstant(date: Date, timeZone: string): string {
  return localDateOfMs(date.getTime(), timeZone);
}

function localDateOfMs(ms: number, timeZone: string): string {
  if (timeZone === 'UTC') return utcDateOf(ms);
  const offset = hourOffsetAt(ms, timeZone);
  if (Number.isNaN(offset) || Number.isNaN(ms)) return formatterFor(timeZone).format(new Date(ms));
  return utcDateOf(ms + offset);
}

const DAY_MS = 86_400_000;
/**
 * Day number (UTC days since 1970) → its 'YYYY-MM-DD', and a date's text → its day's first instant. Every event,
 * decision and journey step turns instants into dates and back and moves dates by days, over the same few hundred
 * days; building a Date and its ISO text each time cost more than the rest of the arithmetic. Both memos hold
 * exactly what the Date arithmetic gives (they are filled by it), and are bounded.
 */
const dateOfDay = new Map<number, string>();
const utcMsOfDate = new Map<string, number>();
const MAX_REMEMBERED_DATES = 100_000;

/** The UTC calendar date of an instant, as toISOString writes it (RangeError for an instant that is no time). */
export function utcDateOf(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let date = dateOfDay.get(day);
  if (date === undefined) {
    date = new Date(ms).toISOString().slice(0, 10);
    if (dateOfDay.size >= MAX_REMEMBERED_DATES) dateOfDay.clear();
    dateOfDay.set(day, date);
  }
  return date;
}

function dateToUtcMs(date: string): number {
  let ms = utcMsOfDate.get(date);
  if (ms === undefined) {
    ms = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)));
    // Text that is no date (NaN) is not remembered, so that a memo full of junk cannot push out real dates.
    if (Number.isNaN(ms)) return ms;
    if (utcMsOfDate.size >= MAX_REMEMBERED_DATES) utcMsOfDate.clear();
    utcMsOfDate.set(date, ms);
  }
  return ms;
}

export function addDays(date: string, days: number): string {
  return utcDateOf(dateToUtcMs(date) + days * DAY_MS);
}

/** Whole days from a to b (b - a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((dateToUtcMs(b) - dateToUtcMs(a)) / DAY_MS);
}

const zoneValidity = new Map<string, boolean>();

/** Asked on every journey step; building a formatter to find out costs tens of microseconds, so it is asked once. */
export function isValidTimeZone(timeZone: string): boolean {
  let valid = zoneValidity.get(timeZone);
  if (valid === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone });
      valid = true;
    } catch {
      valid = false;
    }
    if (zoneValidity.size < 1_000) zoneValidity.set(timeZone, valid);
  }
  return valid;
}

export const LOCAL_DATE = /^\d{4}-\d{2}-\d{2}$/;

export function minDate(...dates: Array<string | undefined>): string | undefined {
  let best: string | undefined;
  for (const date of dates) if (date !== undefined && (best === undefined || date < best)) best = date;
  return best;
}
