/**
 * `strata send-test <tier> <stepId> --to <userId>`: sends one journey step's action to a test user through the
 * step's channel, now, with the same rendered body, authentication, rate limit and retries as `strata dev`. The
 * action is marked as a test (`"test": true`, the {{test}} placeholder, and an X-Strata-Test header), and it
 * goes nowhere near the store: no journey runs, so it counts toward no frequency cap and no funnel.
 */
import { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { type JourneyAction, journeyAction } from '../../core/journey/decide-journey-step.js';
import { isSendStep } from '../../core/journey/journey-schema.js';
import { journeyStepSpec } from '../../core/journey/compile-journey.js';
import { didYouMean } from '../../core/suggest.js';
import { describeDelivery, startChannelDelivery } from '../deliveries.js';
import { type CliOutput, UsageError } from '../output.js';
import { loadValidRuleset } from '../load-ruleset.js';

export interface SendTestOptions {
  to: string;
  rules: string;
}

export async function sendTest(tier: string, stepId: string, options: SendTestOptions, out: CliOutput): Promise<number> {
  const ruleset = await loadValidRuleset(resolve(options.rules), 'the ruleset');
  const journey = ruleset.journeys[tier];
  if (!journey) {
    const tiers = Object.keys(ruleset.journeys);
    throw new UsageError(
      `send-test: tier "${tier}" has no journey (tiers with one: ${tiers.join(', ') || 'none'})`,
      didYouMean(tier, tiers, 'name a tier whose rules/tiers.json entry sets "journey"'),
    );
  }
  const sendSteps = journey.steps.filter(isSendStep);
  const step = journey.steps.find((candidate) => candidate.id === stepId);
  if (!step || !isSendStep(step)) {
    const ids = sendSteps.map((s) => s.id);
    throw new UsageError(
      step
        ? `send-test: step "${stepId}" of ${journey.id} is a ${step.type} step, which sends nothing`
        : `send-test: journey ${journey.id} has no step "${stepId}"`,
      step ? `name a content, invite or offer step: ${ids.join(', ')}` : didYouMean(stepId, ids, `its send steps: ${ids.join(', ')}`),
    );
  }
  const userId = options.to.trim();
  if (userId === '') throw new UsageError("send-test: --to needs the test user's id");

  const executionName = `send-test-${randomUUID()}`;
  const spec = journeyStepSpec(journey, step.id);
  if (spec.step.type !== step.type || !isSendStep(step)) throw new Error(`send-test: step "${step.id}" compiled to a ${spec.step.type} task`);
  const now = new Date();
  const action: JourneyAction = {
    ...journeyAction(
      { spec, execution: { executionName, tier, startedAt: now.toISOString() }, userId, now },
      spec.step as Parameters<typeof journeyAction>[1],
    ),
    test: true,
  };
  const delivery = startChannelDelivery(ruleset, 'send-test', (record) => out.info(describeDelivery(record)));
  out.info(JSON.stringify(action));
  if (!delivery.delivers(step.channel)) {
    out.info(`channel "${step.channel}" has no endpoint in channels.json, so the action above is only logged`);
    await delivery.close();
    return 0;
  }
  const status = await delivery.deliver(action);
  await delivery.close();
  return status === 'delivered' ? 0 : 1;
}

export function sendTestCommand(out: CliOutput): Command {
  return new Command('send-test')
    .description("send one journey step's action to a test user through its channel (marked as a test; no cap, no funnel)")
    .argument('<tier>', 'the tier whose journey holds the step')
    .argument('<stepId>', 'a content, invite or offer step of that journey')
    .requiredOption('--to <userId>', 'the test user who receives it')
    .option('--rules <dir>', 'the project directory with rules/, journeys/ and channels.json', '.')
    .action(async (tier: string, stepId: string, options: SendTestOptions) => {
      process.exitCode = await sendTest(tier, stepId, options, out);
    });
}
