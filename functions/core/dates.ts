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

/** The local calendar date of an instant in a time zone. */
export function localDate(instant: Date | string, timeZone: string): string {
  const date = typeof instant === 'string' ? new Date(instant) : instant;
  if (timeZone === 'UTC') return date.toISOString().slice(0, 10);
  return formatterFor(timeZone).format(date);
}

const DAY_MS = 86_400_000;

function dateToUtcMs(date: string): number {
  return Date.UTC(Number(date.slice(0, 4)), Number(date.slice(5, 7)) - 1, Number(date.slice(8, 10)));
}

export function addDays(date: string, days: number): string {
  return new Date(dateToUtcMs(date) + days * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from a to b (b - a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((dateToUtcMs(b) - dateToUtcMs(a)) / DAY_MS);
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export const LOCAL_DATE = /^\d{4}-\d{2}-\d{2}$/;

export function minDate(...dates: Array<string | undefined>): string | undefined {
  let best: string | undefined;
  for (const date of dates) if (date !== undefined && (best === undefined || date < best)) best = date;
  return best;
}
