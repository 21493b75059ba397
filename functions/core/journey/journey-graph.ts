/**
 * The journey as a graph: which step follows which. Shared by the validator, the compiler and the diagram so
 * that all three agree on the edges.
 */
import { assertNever } from '../errors.js';
import type { JourneyStep } from './journey-schema.js';

export type LinkField = 'next' | 'engaged' | 'notEngaged';

export interface StepLink {
  field: LinkField;
  target: string;
}

export function stepLinks(step: JourneyStep): StepLink[] {
  switch (step.type) {
    case 'content':
    case 'invite':
    case 'offer':
    case 'wait':
      return [{ field: 'next', target: step.next }];
    case 'branch':
      return [
        { field: 'engaged', target: step.engaged },
        { field: 'notEngaged', target: step.notEngaged },
      ];
    case 'exit':
      return [];
    default:
      return assertNever(step, 'journey step');
  }
}

/** Step ids reachable from `start`, following links to steps that exist. */
export function reachableSteps(start: string, byId: ReadonlyMap<string, JourneyStep>, avoid?: string): Set<string> {
  const seen = new Set<string>();
  const queue = byId.has(start) && start !== avoid ? [start] : [];
  for (const id of queue) seen.add(id);
  while (queue.length > 0) {
    const step = byId.get(queue.shift()!)!;
    for (const { target } of stepLinks(step)) {
      if (seen.has(target) || target === avoid || !byId.has(target)) continue;
      seen.add(target);
      queue.push(target);
    }
  }
  return seen;
}

/**
 * Strongly connected components (Tarjan) of the steps in `ids`, following only links inside `ids`. A component
 * of more than one step, or a step that links to itself, is a loop.
 */
export function loops(ids: readonly string[], byId: ReadonlyMap<string, JourneyStep>): string[][] {
  const inside = new Set(ids);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const successors = (id: string): string[] =>
    stepLinks(byId.get(id)!)
      .map((link) => link.target)
      .filter((target) => inside.has(target));

  const visit = (id: string): void => {
    index.set(id, counter);
    low.set(id, counter);
    counter++;
    stack.push(id);
    onStack.add(id);
    for (const target of successors(id)) {
      if (!index.has(target)) {
        visit(target);
        low.set(id, Math.min(low.get(id)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(id, Math.min(low.get(id)!, index.get(target)!));
      }
    }
    if (low.get(id) === index.get(id)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== id);
      if (component.length > 1 || successors(id).includes(id)) found.push(component);
    }
  };
  for (const id of ids) if (!index.has(id)) visit(id);
  return found;
}

/** One concrete walk around a loop, from `from` back to it, staying inside `component`; for messages. */
export function loopWalk(from: string, component: readonly string[], byId: ReadonlyMap<string, JourneyStep>): string[] {
  const inside = new Set(component);
  const parent = new Map<string, string>();
  const queue = [from];
  while (queue.length > 0) {
    const id = queue.shift()!;
    for (const { target } of stepLinks(byId.get(id)!)) {
      if (!inside.has(target)) continue;
      if (target === from) {
        const walk = [from];
        for (let at: string | undefined = id; at !== undefined && at !== from; at = parent.get(at)) walk.splice(1, 0, at);
        walk.push(from);
        return walk;
      }
      if (!parent.has(target)) {
        parent.set(target, id);
        queue.push(target);
      }
    }
  }
  return [from, from];
}
