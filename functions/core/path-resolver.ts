/**
 * json-rules-engine resolves a condition's `path` with JSONPath by default, which can evaluate filter scripts.
 * Strata replaces it with a plain dotted lookup over own properties, so rule JSON can never run code.
 */
import { FORBIDDEN_KEYS } from './ruleset-schema.js';

export const PLAIN_DOTTED_PATH = /^(\$\.)?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export function isPlainDottedPath(path: string): boolean {
  return PLAIN_DOTTED_PATH.test(path) && !path.split('.').some((segment) => FORBIDDEN_KEYS.has(segment));
}

export function plainPathResolver(value: unknown, path: string): unknown {
  // Validation rejects anything else; this check keeps the resolver safe even if it is handed a raw path.
  if (!isPlainDottedPath(path)) return undefined;
  let current: unknown = value;
  for (const segment of path.replace(/^\$\./, '').split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, segment)) {
      return undefined;
    }
    current = (current as Record<string, unknown>)[segment];
  }
  return current;
}
