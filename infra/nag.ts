/**
 * cdk-nag 3 runs as a CDK validation plugin, and every finding fails synth unless it is acknowledged with
 * `Validations.of(construct).acknowledge({ id, reason })`. Acknowledgements match exact finding ids, so these
 * helpers build the ids the way cdk-nag prints them, and every call carries its reason.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';

/** The id cdk-nag gives a wildcard resource in an IAM policy: `AwsSolutions-IAM5[Resource::<flattened ARN>]`. */
export function wildcardResourceFinding(scope: IConstruct, arn: string): string {
  return `AwsSolutions-IAM5[Resource::${flattenCfnReference(Stack.of(scope).resolve(arn))}]`;
}

/** Acknowledges the IAM5 finding of each ARN (all must end in a wildcard) on `scope` and everything under it. */
export function acknowledgeWildcardResources(scope: IConstruct, arns: string[], reason: string): void {
  for (const arn of arns) Validations.of(scope).acknowledge({ id: wildcardResourceFinding(scope, arn), reason });
}

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
