/**
 * Messaging consent, per channel. `message.opted_out` stops one channel's sends when it names a `channel`, every
 * channel when it names none; `message.opted_in` resubscribes the same way. Events can arrive late and out of
 * order, so each change keeps its occurredAt and the latest one that concerns a channel decides for it: an
 * all-channel opt-out after an email opt-in stops email too, and an email opt-in after an all-channel opt-out
 * reopens email only.
 */
import type { UserEvent } from './event.js';
import type { ConsentChange, UserProfile } from './state.js';

export const OPT_OUT_EVENT = 'message.opted_out';
export const OPT_IN_EVENT = 'message.opted_in';
/** The consent key of a change that names no channel. */
export const ALL_CHANNELS = '*';
export const CHANNEL_PROPERTY = 'channel';

/** The all-channel state, including a profile stored before per-channel consent (only `optedOutAt` then). */
function allChannelsChange(profile: Pick<UserProfile, 'consent' | 'optedOutAt'>): ConsentChange | undefined {
  return profile.consent?.[ALL_CHANNELS] ?? (profile.optedOutAt !== undefined ? { optedOut: true, at: profile.optedOutAt } : undefined);
}

/**
 * The profile after a consent event, or undefined when the event is not one or changes nothing (an older change
 * than the one stored, or the state it already has).
 */
export function applyConsentEvent(profile: UserProfile, event: UserEvent): UserProfile | undefined {
  if (event.type !== OPT_OUT_EVENT && event.type !== OPT_IN_EVENT) return undefined;
  const named = event.properties[CHANNEL_PROPERTY];
  const key = typeof named === 'string' && named !== '' ? named : ALL_CHANNELS;
  const optedOut = event.type === OPT_OUT_EVENT;
  const stored = key === ALL_CHANNELS ? allChannelsChange(profile) : profile.consent?.[key];
  // A later change in the same direction still moves `at`: it may now be the latest word on a channel.
  if (stored && (stored.at > event.occurredAt || (stored.at === event.occurredAt && stored.optedOut === optedOut))) return undefined;
  const consent = { ...profile.consent, [key]: { optedOut, at: event.occurredAt } };
  const next: UserProfile = { ...profile, consent };
  // optedOutAt stays the all-channel opt-out, as readers written before per-channel consent expect.
  const all = consent[ALL_CHANNELS];
  if (all?.optedOut) next.optedOutAt = all.at;
  else delete next.optedOutAt;
  return next;
}

/** Whether sends on `channel` are stopped; with no channel, whether every channel is. */
export function isOptedOut(profile: Pick<UserProfile, 'consent' | 'optedOutAt'>, channel?: string): boolean {
  const all = allChannelsChange(profile);
  const own = channel === undefined ? undefined : profile.consent?.[channel];
  if (!own) return all?.optedOut ?? false;
  if (!all) return own.optedOut;
  // The later change decides; at the same instant, the safer answer.
  if (own.at === all.at) return own.optedOut || all.optedOut;
  return own.at > all.at ? own.optedOut : all.optedOut;
}
