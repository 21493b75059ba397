/**
 * Clock times in a time zone: "is it quiet hours for this user", "when is 08:00 next in Asia/Shanghai", "when
 * does this local day start". Instants are Dates; local times are minutes after local midnight.
 */
import { addDays, hourOffsetAt, utcDateOf } from './dates.js';

const partFormatters = new Map<string, Intl.DateTimeFormat>();

function partsFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = partFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    partFormatters.set(timeZone, formatter);
  }
  return formatter;
}

interface LocalParts {
  date: string;
  minutes: number;
  /** Milliseconds by which local wall time is ahead of UTC at this instant. */
  offsetMs: number;
}

/** Instants whose local date has a four-digit year, which the ISO text and the formatter write alike. */
const FIRST_FAST_MS = Date.UTC(1000, 0, 1);
const LAST_FAST_MS = Date.UTC(10000, 0, 1) - 1;
const DAY_MS = 86_400_000;

function localParts(instant: Date, timeZone: string): LocalParts {
  // The zone's offset for the hour (found once per hour and zone) gives the wall clock by arithmetic; an hour in
  // which the offset changes, and dates far from now, go to the formatter.
  const ms = instant.getTime();
  const offset = hourOffsetAt(ms, timeZone);
  const wall = ms + offset;
  if (wall >= FIRST_FAST_MS && wall <= LAST_FAST_MS) {
    const msOfDay = wall - Math.floor(wall / DAY_MS) * DAY_MS;
    return { date: utcDateOf(wall), minutes: Math.floor(msOfDay / 60_000), offsetMs: offset };
  }
  const parts: Record<string, string> = {};
  for (const part of partsFormatter(timeZone).formatToParts(instant)) parts[part.type] = part.value;
  const [year, month, day, hour, minute, second] = ['year', 'month', 'day', 'hour', 'minute', 'second'].map((k) => Number(parts[k]));
  const wallAsUtc = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const instantSeconds = Math.floor(instant.getTime() / 1000) * 1000;
  return {
    date: `${parts['year']}-${parts['month']}-${parts['day']}`,
    minutes: hour! * 60 + minute!,
    offsetMs: wallAsUtc - instantSeconds,
  };
}

export function parseTimeOfDay(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** The local date and minutes after local midnight of an instant. */
export function localClock(instant: Date, timeZone: string): { date: string; minutes: number } {
  const { date, minutes } = localParts(instant, timeZone);
  return { date, minutes };
}

/**
 * The instant at which the local clock in `timeZone` shows `minutes` on `date`. In a DST gap the time does not
 * exist and the instant just after the gap is returned; in an overlap, the earlier of the two.
 */
export function instantAtLocalTime(date: string, minutes: number, timeZone: string): Date {
  const wallAsUtc = Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)), 0, minutes);
  let guess = wallAsUtc - localParts(new Date(wallAsUtc), timeZone).offsetMs;
  // A second pass corrects a guess that landed on the other side of an offset change.
  guess = wallAsUtc - localParts(new Date(guess), timeZone).offsetMs;
  return new Date(guess);
}

/** The first instant strictly after `after` at which the local clock shows `minutes`. */
export function nextLocalTime(after: Date, minutes: number, timeZone: string): Date {
  const today = localClock(after, timeZone).date;
  for (let offset = 0; offset <= 2; offset++) {
    const candidate = instantAtLocalTime(addDays(today, offset), minutes, timeZone);
    if (candidate.getTime() > after.getTime()) return candidate;
  }
  // Unreachable: a local time of day comes round within two days in every zone.
  throw new Error(`local-time: no ${minutes} minutes after ${after.toISOString()} in ${timeZone}`);
}

/** Whether `minutes` falls in the window [start, end), which may wrap past midnight (21:00 to 08:00). */
export function inDailyWindow(minutes: number, start: number, end: number): boolean {
  return start < end ? minutes >= start && minutes < end : minutes >= start || minutes < end;
}

/**
 * An instant to the minute as the local clock in `timeZone` shows it, with that zone's UTC offset:
 * "2026-11-28 21:05 +08:00". The offset is part of the text so that a quiet-hours deferral at 21:05 in Shanghai
 * does not read as 13:05 somewhere else.
 */
export function formatLocalMinute(instant: Date | string, timeZone: string): string {
  const { date, minutes, offsetMs } = localParts(new Date(instant), timeZone);
  const pad = (n: number): string => String(n).padStart(2, '0');
  const offsetMinutes = Math.round(Math.abs(offsetMs) / 60_000);
  const offset = `${offsetMs < 0 ? '-' : '+'}${pad(Math.floor(offsetMinutes / 60))}:${pad(offsetMinutes % 60)}`;
  return `${date} ${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)} ${offset}`;
}
