/**
 * The re-judge Lambda: the steps of a run that reviews every user once under a newly deployed ruleset.
 *
 *   plan      whether the live ruleset version still needs a re-judge, and the Scan segments to run
 *   segment   one Scan segment, resumed from its checkpoint (a Map runs the segments side by side); when the
 *             invocation's time budget runs out between pages it returns `next`, and the state machine calls it
 *             again, which resumes at the stored cursor
 *   complete  records the version as re-judged once every segment is done
 *
 * Safe to rerun: a finished segment is skipped, an interrupted one resumes at its last page, and a version already
 * re-judged plans nothing. Judging is the nightly review's own (reviewUser), so no rule is decided twice over.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { completeRejudge, isRejudgeNeeded, type RejudgeStats, type RejudgeStore, rejudgeSegment } from '../core/rejudge.js';
import type { TierServices } from '../core/ingest.js';
// Only a type: importing the review module's values would also build its handler in this bundle at load.
import type { InvocationClock } from './review.js';
import { HandlerOutsideBundleError, bakedProjectFiles, loadRulesetOrFail } from './runtime.js';
import { tierServicesFromEnvironment } from './tier-services.js';

export const REJUDGE_SERVICE_NAME = 'strata-rejudge';

/**
 * Scan segments of a re-judge run in AWS. A constant, not a setting: a segment's stored cursor belongs to one
 * split of the table, so the count must not change between a failed run and its resumption.
 */
export const REJUDGE_SEGMENTS = 16;

/**
 * A segment starts no further Scan page when less than this is left of its invocation. A page lists up to a
 * thousand users, judged one after another; five minutes leaves 300 ms for each, far above a judgement's few
 * DynamoDB calls, so a page always finishes and its cursor is stored before Lambda's timeout.
 */
export const REJUDGE_TIME_MARGIN_MS = 5 * 60_000;

export type RejudgeStepInput = { step: 'plan' } | { step: 'segment'; segment: number } | { step: 'complete' };

export interface RejudgePlan {
  rulesetVersion: string;
  needed: boolean;
  segments: number[];
}

export interface RejudgeSegmentResult extends RejudgeStats {
  segment: number;
  /** Present when the time budget ran out: the state machine passes it back as the next segment step's input. */
  next?: Extract<RejudgeStepInput, { step: 'segment' }>;
}

export type RejudgeStepOutput = RejudgePlan | RejudgeSegmentResult | { completed: boolean; rulesetVersion: string };

export interface RejudgeDependencies {
  services: TierServices;
  store: RejudgeStore;
  totalSegments: number;
  logger?: Logger;
}

export class InvalidRejudgeInputError extends Error {
  override readonly name = 'InvalidRejudgeInputError';
  constructor(problem: string) {
    super(`Rejudge: ${problem}; the state machine passes {"step": "plan"}, {"step": "segment", "segment"} or {"step": "complete"}`);
  }
}

export function parseRejudgeStepInput(input: unknown, totalSegments: number): RejudgeStepInput {
  if (input === null || typeof input !== 'object') throw new InvalidRejudgeInputError('the input is not an object');
  const { step, segment } = input as { step?: unknown; segment?: unknown };
  switch (step) {
    case 'plan':
    case 'complete':
      return { step };
    case 'segment':
      if (typeof segment !== 'number' || !Number.isInteger(segment) || segment < 0 || segment >= totalSegments) {
        throw new InvalidRejudgeInputError(`"segment" must be a whole number from 0 to ${totalSegments - 1}`);
      }
      return { step, segment };
    default:
      throw new InvalidRejudgeInputError(`unknown step ${JSON.stringify(step)}`);
  }
}

export type RejudgeHandler = (input: unknown, context?: InvocationClock) => Promise<RejudgeStepOutput>;

export function createRejudgeHandler(dependencies: RejudgeDependencies): RejudgeHandler {
  const { services, store, totalSegments } = dependencies;
  const logger = dependencies.logger ?? new Logger({ serviceName: REJUDGE_SERVICE_NAME });
  const rulesetVersion = services.ruleset.version;
  return async (input, context) => {
    const step = parseRejudgeStepInput(input, totalSegments);
    switch (step.step) {
      case 'plan': {
        const needed = await isRejudgeNeeded(services, store);
        logger.info('Re-judge planned', { rulesetVersion, needed, totalSegments });
        return { rulesetVersion, needed, segments: needed ? Array.from({ length: totalSegments }, (_, i) => i) : [] };
      }
      case 'segment': {
        const hasTimeLeft = context ? () => context.getRemainingTimeInMillis() > REJUDGE_TIME_MARGIN_MS : undefined;
        const stats = await rejudgeSegment(services, store, step.segment, totalSegments, hasTimeLeft ? { hasTimeLeft } : {});
        logger.info(stats.paused ? 'Re-judge segment paused: time budget used, resuming' : 'Re-judge segment done', {
          rulesetVersion,
          segment: step.segment,
          ...stats,
        });
        const result: RejudgeSegmentResult = { segment: step.segment, ...stats };
        if (stats.paused) result.next = { step: 'segment', segment: step.segment };
        return result;
      }
      case 'complete': {
        const completed = await completeRejudge(services, store, totalSegments);
        logger.info('Re-judge completion', { rulesetVersion, completed });
        return { completed, rulesetVersion };
      }
    }
  };
}

export function rejudgeDependenciesFromEnvironment(files = bakedProjectFiles()): RejudgeDependencies {
  if (!files) throw new HandlerOutsideBundleError('rejudge', 'createRejudgeHandler');
  const { services, store } = tierServicesFromEnvironment(loadRulesetOrFail(files));
  return { services, store, totalSegments: REJUDGE_SEGMENTS };
}

export const handler: RejudgeHandler = bakedProjectFiles()
  ? createRejudgeHandler(rejudgeDependenciesFromEnvironment())
  : () => Promise.reject(new HandlerOutsideBundleError('rejudge', 'createRejudgeHandler'));
