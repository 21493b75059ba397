/**
 * Day items as the store's earlier layout wrote them, kept here verbatim since the store no longer writes it, so
 * that tests can prove items already in tables read back as they did: counters under their full ids (in deployed
 * tables only the ruleset's generated `n_`/`s_` ids of 10 characters), a heavy day's hourly signals as
 * `@<filter id>` number sets of hours from UTC midnight of its date, every other signal a string in `sig`.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { ImportedDay } from '../../functions/core/import-plan.js';

export function earlierLayoutItem(userId: string, day: ImportedDay): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    pk: { S: `USER#${userId}` },
    sk: { S: `DAY#${day.date}` },
    expiresAt: { N: '1900000000' },
  };
  for (const [counterId, amount] of Object.entries(day.counters)) item[counterId] = { N: String(amount) };
  if (day.heavy) item['hv'] = { BOOL: true };
  else if (day.eventKeys.length > 0) item['ids'] = { SS: [...day.eventKeys] };
  const base = Date.parse(`${day.date}T00:00:00Z`) / 3_600_000;
  const strings: string[] = [];
  for (const signal of new Set(day.signals ?? [])) {
    const at = signal.lastIndexOf('@');
    const seconds = Number(signal.slice(at + 1));
    if (day.heavy && seconds % 3600 === 0) {
      const name = `@${signal.slice(0, at)}`;
      item[name] = { NS: [...(item[name]?.NS ?? []), String(seconds / 3600 - base)] };
    } else strings.push(signal);
  }
  if (strings.length > 0) item['sig'] = { SS: strings };
  if (day.sends !== undefined) item['sends'] = { N: String(day.sends) };
  if (day.sendIds?.length) item['sendIds'] = { SS: [...day.sendIds] };
  return item;
}
