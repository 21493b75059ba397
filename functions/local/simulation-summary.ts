/** The summary's shape now lives with the replay engine, which both engines' summaries share. */
export type * from '../replay/simulation-summary.js';
