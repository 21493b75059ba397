/**
 * Re-judging every user once a new ruleset is live. The nightly review reads only users whose review date has
 * come, which a rule change does not move; so when the stored "re-judged version" differs from the ruleset's,
 * every user is reviewed once under the new rules (the same decide-and-save as the nightly review: promotions at
 * once, grace where a user no longer qualifies, tenure respected).
 *
 * The users are read in parallel Scan segments. Each segment records its cursor after every page, under the
 * version being judged, so a failed or repeated run resumes where it stopped; reviewing a user twice is harmless
 * (the second decision changes nothing). The version is marked done only after every segment is.
 */
import { reviewUser } from './review.js';
import type { TierServices } from './ingest.js';

export interface RejudgeProgress {
  /** Where the segment's Scan goes on; absent at the start. */
  cursor?: string;
  done: boolean;
}

export interface RejudgeStore {
  /** One page of user ids from one Scan segment of all users. */
  scanUserIds(segment: number, totalSegments: number, cursor?: string): Promise<{ userIds: string[]; cursor?: string }>;
  /** The ruleset version every user was last re-judged under, if any. */
  getRejudgedVersion(): Promise<string | undefined>;
  setRejudgedVersion(version: string): Promise<void>;
  getRejudgeProgress(version: string, segment: number): Promise<RejudgeProgress | undefined>;
  setRejudgeProgress(version: string, segment: number, progress: RejudgeProgress): Promise<void>;
}

export interface RejudgeStats {
  usersJudged: number;
  usersChanged: number;
  transitions: Record<string, number>;
  /** The segment stopped between pages because its time ran out; judging it again resumes at its cursor. */
  paused?: true;
}

export interface RejudgeSegmentOptions {
  /** Asked after each page: false stops the segment there (a Lambda near its timeout). Default: always true. */
  hasTimeLeft?: () => boolean;
}

export async function isRejudgeNeeded(services: TierServices, store: RejudgeStore): Promise<boolean> {
  return (await store.getRejudgedVersion()) !== services.ruleset.version;
}

/** Judges every user of one segment under the current ruleset, resuming from the segment's stored cursor. */
export async function rejudgeSegment(
  services: TierServices,
  store: RejudgeStore,
  segment: number,
  totalSegments: number,
  options: RejudgeSegmentOptions = {},
): Promise<RejudgeStats> {
  const version = services.ruleset.version;
  const stats: RejudgeStats = { usersJudged: 0, usersChanged: 0, transitions: {} };
  const progress = await store.getRejudgeProgress(version, segment);
  if (progress?.done) return stats;
  let cursor = progress?.cursor;
  do {
    const page = await store.scanUserIds(segment, totalSegments, cursor);
    for (const userId of page.userIds) {
      const decision = await reviewUser(services, userId);
      stats.usersJudged += 1;
      if (decision.changed) stats.usersChanged += 1;
      for (const transition of decision.transitions) stats.transitions[transition.kind] = (stats.transitions[transition.kind] ?? 0) + 1;
    }
    cursor = page.cursor;
    await store.setRejudgeProgress(version, segment, cursor ? { cursor, done: false } : { done: true });
    if (cursor && options.hasTimeLeft && !options.hasTimeLeft()) {
      stats.paused = true;
      break;
    }
  } while (cursor);
  return stats;
}

/** Marks the current version re-judged; refuses while a segment is unfinished, so a partial run is resumed. */
export async function completeRejudge(services: TierServices, store: RejudgeStore, totalSegments: number): Promise<boolean> {
  const version = services.ruleset.version;
  for (let segment = 0; segment < totalSegments; segment++) {
    if (!(await store.getRejudgeProgress(version, segment))?.done) return false;
  }
  await store.setRejudgedVersion(version);
  return true;
}
