/**
 * The re-judge Lambda: the steps of a run that reviews every user once under a newly deployed ruleset.
 *
 *   plan      whether the live ruleset version still needs a re-judge, and the Scan segments to run
 *   segment   one Scan segment, resumed from its checkpoint (a Map runs the segments side by side)
 *   complete  records the version as re-judged once every segment is done
 *
 * Safe to rerun: a finished segment is skipped, an interrupted one resumes at its last page, and a version already
 * re-judged plans nothing. Judging is the nightly review's own (reviewUser), so no rule is decided twice over.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { completeRejudge, isRejudgeNeeded, type RejudgeStats, type RejudgeStore, rejudgeSegment } from '../core/rejudge.js';
import type { TierServices } from '../core/ingest.js';

export const REJUDGE_SERVICE_NAME = 'strata-rejudge';

export type RejudgeStepInput = { step: 'plan' } | { step: 'segment'; segment: number } | { step: 'complete' };

export interface RejudgePlan {
  rulesetVersion: string;
  needed: boolean;
  segments: number[];
}

export type RejudgeStepOutput = RejudgePlan | (RejudgeStats & { segment: number }) | { completed: boolean; rulesetVersion: string };

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

export function createRejudgeHandler(dependencies: RejudgeDependencies): (input: unknown) => Promise<RejudgeStepOutput> {
  const { services, store, totalSegments } = dependencies;
  const logger = dependencies.logger ?? new Logger({ serviceName: REJUDGE_SERVICE_NAME });
  const rulesetVersion = services.ruleset.version;
  return async (input) => {
    const step = parseRejudgeStepInput(input, totalSegments);
    switch (step.step) {
      case 'plan': {
        const needed = await isRejudgeNeeded(services, store);
        logger.info('Re-judge planned', { rulesetVersion, needed, totalSegments });
        return { rulesetVersion, needed, segments: needed ? Array.from({ length: totalSegments }, (_, i) => i) : [] };
      }
      case 'segment': {
        const stats = await rejudgeSegment(services, store, step.segment, totalSegments);
        logger.info('Re-judge segment done', { rulesetVersion, segment: step.segment, ...stats });
        return { segment: step.segment, ...stats };
      }
      case 'complete': {
        const completed = await completeRejudge(services, store, totalSegments);
        logger.info('Re-judge completion', { rulesetVersion, completed });
        return { completed, rulesetVersion };
      }
    }
  };
}
