import * as crypto from 'node:crypto';

/** Stable JSON: object keys sorted, so that equal content always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']';
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return '{' + entries.map(([k, v]) => JSON.stringify(k) + ':' + canonicalJson(v)).join(',') + '}';
}

/**
 * One-shot SHA-256 (crypto.hash, Node 20.12 and later) where this Node has it: every event hashes its key, and
 * making a Hash object costs more than the digest. The same digest either way.
 */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: string) => string | Buffer }).hash;

function sha256(text: string, encoding: 'hex' | 'base64url'): string;
function sha256(text: string, encoding: 'buffer'): Buffer;
function sha256(text: string, encoding: 'hex' | 'base64url' | 'buffer'): string | Buffer {
  if (oneShot) return oneShot('sha256', text, encoding);
  const hash = crypto.createHash('sha256').update(text);
  return encoding === 'buffer' ? hash.digest() : hash.digest(encoding);
}

export function sha256Hex(text: string): string {
  return sha256(text, 'hex');
}

/** A short, URL-safe digest. 64 bits or more is enough to make accidental collisions negligible here. */
export function shortHash(text: string, length = 16): string {
  return sha256(text, 'base64url').slice(0, length);
}

/** A number in [0, 100) from a stable hash, for deterministic percentage splits such as holdouts. */
export function hashPercent(text: string): number {
  const digest = sha256(text, 'buffer');
  return (digest.readUInt32BE(0) / 0x1_0000_0000) * 100;
}

/** A pseudonymous user reference for logs and execution names: never the raw id or email. */
export function userRef(userId: string): string {
  // Asked for every notice of a user, often several times in a row for the same one.
  if (userId !== lastRef.userId) lastRef = { userId, ref: 'u_' + shortHash('user:' + userId, 16) };
  return lastRef.ref;
}
let lastRef = { userId: '', ref: 'u_' + shortHash('user:', 16) };
