/**
 * localDate finds a zone's offset once per UTC hour instead of formatting every instant. It must give exactly what
 * Intl gives, including around DST changes, in zones with half- and quarter-hour offsets, and in historical
 * offsets with seconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { localDate } from '../../functions/core/dates.js';

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
});
