/**
 * Names derived from the stack name, so that two stages of Strata (say `Strata-staging` and `Strata-prod`) can be
 * deployed in one account without colliding: CloudFormation treats some ids as account-wide physical ids, and
 * CloudWatch metrics from both would otherwise add up in one namespace.
 */
import { createHash } from 'node:crypto';

/** CDK prefixes an event-bus statement id with `cdk-`, and CloudFormation allows 64 characters in all. */
const MAX_BUS_STATEMENT_ID = 64 - 'cdk-'.length;

/**
 * The statement id of an event-bus policy statement: an account-wide physical id (AWS::Events::EventBusPolicy),
 * so it carries the stack name. A long stack name is shortened, with a hash of the whole name to stay unique.
 */
export function busStatementId(stackName: string, statement: string): string {
  const id = `${stackName}-${statement}`;
  if (id.length <= MAX_BUS_STATEMENT_ID) return id;
  const hash = createHash('sha256').update(stackName).digest('hex').slice(0, 8);
  const room = MAX_BUS_STATEMENT_ID - statement.length - hash.length - 2;
  if (room < 1) throw new RangeError(`StageNames: the bus statement name "${statement}" leaves no room for the stack name; shorten it`);
  return `${stackName.slice(0, room)}-${hash}-${statement}`;
}

/** The CloudWatch namespace of the handlers' own metrics (EventsIngested, UsersReviewed, …) for one stack. */
export function metricsNamespaceOf(stackName: string): string {
  return `Strata/${stackName}`;
}
