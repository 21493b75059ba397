/**
 * localDate and the local clock find a zone's offset once per UTC hour instead of formatting every instant, dates
 * move by remembered day numbers, and UTC stamps are parsed by hand. Each must give exactly what Intl, Date and
 * Date.parse give, including around DST changes, in zones with half- and quarter-hour offsets, and in historical
 * offsets with seconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addDays, daysBetween, instantMs, localDate } from '../../functions/core/dates.js';
import { formatLocalMinute, localClock } from '../../functions/core/local-time.js';

const ZONES = [
  'Asia/Shanghai',
  'America/New_York',
  'Europe/London',
  'Australia/Lord_Howe',
  'Asia/Kathmandu',
  'America/St_Johns',
  'Pacific/Chatham',
  'Africa/Monrovia',
];

/** The local clock as Intl reads it, the way local-time.ts read it before it used the hour's offset. */
function intlClock(instant: Date, timeZone: string): { date: string; minutes: number } {
  const parts: Record<string, string> = {};
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
  for (const part of format.formatToParts(instant)) parts[part.type] = part.value;
  return { date: `${parts['year']}-${parts['month']}-${parts['day']}`, minutes: Number(parts['hour']) * 60 + Number(parts['minute']) };
}

function intlDate(instant: Date, timeZone: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(instant);
}

describe('localDate', () => {
  it('agrees with Intl at any instant in any zone', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1900, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom(...ZONES), (ms, zone) => {
        expect(localDate(new Date(ms), zone)).toBe(intlDate(new Date(ms), zone));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with Intl minute by minute across DST changes and local midnights', () => {
    const starts = [Date.UTC(2026, 2, 8, 4), Date.UTC(2026, 10, 1, 3), Date.UTC(2026, 2, 29, 0), Date.UTC(2026, 3, 4, 13), Date.UTC(2026, 8, 26, 12)];
    for (const zone of ZONES) {
      for (const start of starts) {
        for (let minute = 0; minute < 6 * 60; minute += 7) {
          const instant = new Date(start + minute * 60_000 + 59_000);
          expect(localDate(instant, zone)).toBe(intlDate(instant, zone));
        }
      }
    }
  });

  it('and the local clock agree with Intl at any instant in any zone', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1000, 0, 2), max: Date.UTC(9999, 11, 30) }), fc.constantFrom(...ZONES, 'UTC'), (ms, zone) => {
        const instant = new Date(ms);
        expect(localClock(instant, zone)).toEqual(intlClock(instant, zone));
        expect(formatLocalMinute(instant, zone).slice(0, 16)).toBe(
          `${intlClock(instant, zone).date} ${String(Math.floor(intlClock(instant, zone).minutes / 60)).padStart(2, '0')}:${String(intlClock(instant, zone).minutes % 60).padStart(2, '0')}`,
        );
      }),
      { numRuns: 3000 },
    );
  });

  it('moves dates by days as Date arithmetic does', () => {
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9000, 0, 1) }), fc.integer({ min: -1000, max: 1000 }), (ms, days) => {
        const date = new Date(ms).toISOString().slice(0, 10);
        const moved = new Date(Date.parse(date) + days * 86_400_000).toISOString().slice(0, 10);
        expect(addDays(date, days)).toBe(moved);
        expect(daysBetween(date, moved)).toBe(days);
      }),
      { numRuns: 3000 },
    );
    expect(() => addDays('not a date', 1)).toThrow(RangeError);
  });
});

describe('instantMs', () => {
  it('is Date.parse for stamps in every form, valid or not', () => {
    const stamp = fc.integer({ min: Date.UTC(-2000, 0, 1), max: Date.UTC(12000, 0, 1) }).map((ms) => new Date(ms).toISOString());
    const texts = fc.oneof(
      stamp,
      stamp.map((text) => text.slice(0, 19) + 'Z'),
      stamp.map((text) => text.slice(0, 19) + '+08:00'),
      // One character changed: out-of-range fields, stray signs and letters.
      fc.tuple(stamp, fc.nat(), fc.constantFrom(...'0123456789-:TZ.+ x')).map(([text, at, char]) => {
        const i = at % text.length;
        return text.slice(0, i) + char + text.slice(i + 1);
      }),
      fc.string(),
    );
    fc.assert(
      fc.property(texts, (text) => {
        expect(Object.is(instantMs(text), Date.parse(text))).toBe(true);
      }),
      { numRuns: 20_000 },
    );
    for (const text of ['2026-02-29T00:00:00Z', '2026-04-31T10:00:00.000Z', '2026-01-01T24:00:00Z', '0999-01-01T00:00:00Z', '2026-1-01T00:00:00Z'])
      expect(Object.is(instantMs(text), Date.parse(text))).toBe(true);
  });
});
