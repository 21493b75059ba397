import { describe, expect, it } from 'vitest';
import { type ParseContext, dynaliteConditionParse, dynaliteUpdateParse, rememberingParse } from '../../functions/local/dynalite-expression-cache.js';

type Values = Record<string, Record<string, unknown>>;

interface Case {
  text: string;
  names?: Record<string, string>;
  /** Successive requests' values for the same expression. */
  values: Values[];
  isKeyCondition?: boolean;
}

const S = (value: string) => ({ S: value });
const N = (value: number) => ({ N: String(value) });

/** The store's own condition expressions (functions/aws/dynamo-store.ts), and shapes whose parse depends on values. */
const CASES: Case[] = [
  {
    text: 'NOT contains(#ids, :key) AND attribute_not_exists(#hv) AND (attribute_not_exists(#ids) OR size(#ids) < :limit)',
    names: { '#ids': 'ids', '#hv': 'heavy' },
    values: [
      { ':key': S('k1'), ':limit': N(400) },
      { ':key': S('k2'), ':limit': N(400) },
      { ':key': N(7), ':limit': N(400) },
    ],
  },
  { text: '#v = :expected', names: { '#v': 'version' }, values: [{ ':expected': N(1) }, { ':expected': N(2) }, { ':expected': S('x') }] },
  {
    text: '#pk = :pk AND #sk BETWEEN :from AND :profile',
    names: { '#pk': 'pk', '#sk': 'sk' },
    isKeyCondition: true,
    values: [
      { ':pk': S('USER#a'), ':from': S('DAY#2026-03-01'), ':profile': S('PROFILE') },
      { ':pk': S('USER#b'), ':from': S('DAY#2026-03-02'), ':profile': S('PROFILE') },
      // Bounds the wrong way round: an error that only the values reveal.
      { ':pk': S('USER#b'), ':from': S('Z'), ':profile': S('A') },
      { ':pk': S('USER#b'), ':from': N(1), ':profile': S('A') },
    ],
  },
  {
    text: 'attribute_not_exists(#settled) AND #date = :named AND #token = :token',
    names: { '#settled': 'settled', '#date': 'date', '#token': 'token' },
    values: [
      { ':named': S('2026-03-01'), ':token': S('t1') },
      { ':named': S('2026-03-02'), ':token': S('t2') },
    ],
  },
  {
    text: 'attribute_type(#a, :t)',
    names: { '#a': 'a' },
    values: [{ ':t': S('N') }, { ':t': S('NOPE') }, { ':t': S('S') }, { ':t': N(1) }],
  },
  { text: 'begins_with(#a, :p)', names: { '#a': 'a' }, values: [{ ':p': S('x') }, { ':p': N(1) }, { ':p': S('y') }] },
  {
    text: 'size(:v) > :n',
    values: [
      { ':v': S('abc'), ':n': N(1) },
      { ':v': N(3), ':n': N(1) },
      { ':v': S('z'), ':n': N(2) },
    ],
  },
  // Unused and missing placeholders: errors about names and values.
  { text: '#a = :a', names: { '#a': 'a', '#unused': 'u' }, values: [{ ':a': N(1), ':unused': N(2) }, { ':a': N(3) }, {}] },
  { text: '#missing = :a', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: '(#a = :a)', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'unknown_fn(#a)', names: { '#a': 'a' }, values: [{}, {}] },
  { text: '#a = = :a', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(1) }] },
  { text: 'status = :a', values: [{ ':a': N(1) }, { ':a': N(1) }] },
  {
    text: 'contains(#m.#l[2], :v) OR #n IN (:v, :w)',
    names: { '#m': 'm', '#l': 'l', '#n': 'n' },
    values: [
      { ':v': S('a'), ':w': N(1) },
      { ':v': S('b'), ':w': N(2) },
    ],
  },
];

const SS = (...values: string[]) => ({ SS: values });
const BS = (...values: string[]) => ({ BS: values.map((value) => Buffer.from(value)) });

/** The store's own update expressions (functions/aws/dynamo-store.ts, dynamo-counters.ts), and shapes whose parse checks values' types. */
const UPDATE_CASES: Case[] = [
  {
    text: 'ADD #ids :keys, #c0 :c0, #c1 :c1, #s0 :s0 SET #expiresAt = :expiresAt',
    names: { '#ids': 'ids', '#c0': 'c_orders', '#c1': 'c_spend', '#s0': 'sig', '#expiresAt': 'expiresAt' },
    values: [
      { ':keys': SS('k1'), ':c0': N(1), ':c1': N(12.5), ':s0': BS('a'), ':expiresAt': N(1_900_000_000) },
      { ':keys': SS('k2'), ':c0': N(-1), ':c1': N(3), ':s0': BS('b', 'c'), ':expiresAt': N(1_900_000_001) },
      // A string where ADD needs a number or a set: an error only the value's type reveals.
      { ':keys': SS('k3'), ':c0': S('1'), ':c1': N(3), ':s0': BS('d'), ':expiresAt': N(1) },
    ],
  },
  {
    text: 'REMOVE #p0, #p1',
    names: { '#p0': 'p_k1', '#p1': 'p_k2', '#pk': 'pk' },
    values: [{}, {}],
  },
  {
    text: 'SET #v = if_not_exists(#v, :zero) + :one, #at = :at',
    names: { '#v': 'version', '#at': 'at' },
    values: [
      { ':zero': N(0), ':one': N(1), ':at': S('2026-03-01') },
      { ':zero': N(0), ':one': N(1), ':at': S('2026-03-02') },
      { ':zero': N(0), ':one': S('1'), ':at': S('x') },
    ],
  },
  { text: 'SET #l = list_append(#l, :v)', names: { '#l': 'l' }, values: [{ ':v': { L: [N(1)] } }, { ':v': N(1) }, { ':v': { L: [] } }] },
  { text: 'DELETE #s :v', names: { '#s': 's' }, values: [{ ':v': SS('a') }, { ':v': S('a') }, { ':v': SS('b', 'c') }] },
  // Errors: a section twice, overlapping paths, an unknown function, a missing name, a reserved word, unused values.
  { text: 'SET #a = :a SET #b = :a', names: { '#a': 'a', '#b': 'b' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'SET #a = :a, #a.#b = :a', names: { '#a': 'a', '#b': 'b' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'SET #a = nope(:a)', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'SET #missing = :a', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'SET status = :a', values: [{ ':a': N(1) }, { ':a': N(2) }] },
  { text: 'SET #a = :a', names: { '#a': 'a', '#unused': 'u' }, values: [{ ':a': N(1), ':unused': N(2) }, { ':a': N(3) }, {}] },
  { text: 'SET #a = :a,', names: { '#a': 'a' }, values: [{ ':a': N(1) }, { ':a': N(1) }] },
];

function freshContext(names: Record<string, string> | undefined, values: Values, isKeyCondition: boolean | undefined): ParseContext {
  return {
    ...(names ? { attrNames: names } : {}),
    attrVals: structuredClone(values),
    // Marked used by the parse, as dynalite's validations do; one name is left marked used by an earlier expression.
    unusedAttrNames: Object.fromEntries(Object.keys(names ?? {}).map((name) => [name, true])),
    unusedAttrVals: Object.fromEntries(Object.keys(values).map((name) => [name, true])),
    ...(isKeyCondition ? { isKeyCondition: true } : {}),
    // What dynalite's validations add before parsing (validations/index.js, parse).
    isReserved: (name: string) => ['STATUS', 'SIZE', 'DATE', 'TOKEN'].includes(name.toUpperCase()),
    compare: (comparison: string, x: Record<string, string>, y: Record<string, string>) =>
      comparison === 'GT' && (x['S'] ?? x['N'] ?? '') > (y['S'] ?? y['N'] ?? ''),
  };
}

function outcome(parse: (text: string, options: { context: ParseContext }) => unknown, text: string, context: ParseContext): unknown {
  try {
    return { result: parse(text, { context }), unusedNames: context.unusedAttrNames, unusedValues: context.unusedAttrVals };
  } catch (error) {
    return { thrown: (error as Error).message };
  }
}

describe("remembering dynalite's condition parses", () => {
  it('gives every request exactly what dynalite parses for it, values and unused placeholders included', () => {
    const original = dynaliteConditionParse();
    const remembering = rememberingParse(original);
    let compared = 0;
    // Twice over, so that second rounds meet remembered parses made with other values.
    for (let round = 0; round < 2; round++) {
      for (const { text, names, values, isKeyCondition } of CASES) {
        for (const requestValues of values) {
          const expected = outcome(original, text, freshContext(names, requestValues, isKeyCondition));
          const context = freshContext(names, requestValues, isKeyCondition);
          const actual = outcome(remembering, text, context);
          expect(actual, `${text} with ${JSON.stringify(requestValues)}`).toEqual(expected);
          compared += 1;
        }
      }
    }
    expect(compared).toBeGreaterThan(50);
  });

  it('gives every UpdateItem exactly what dynalite parses for its update expression', () => {
    const original = dynaliteUpdateParse();
    const remembering = rememberingParse(original);
    let compared = 0;
    for (let round = 0; round < 2; round++) {
      for (const { text, names, values } of UPDATE_CASES) {
        for (const requestValues of values) {
          const expected = outcome(original, text, freshContext(names, requestValues, false));
          const actual = outcome(remembering, text, freshContext(names, requestValues, false));
          expect(actual, `${text} with ${JSON.stringify(requestValues)}`).toEqual(expected);
          compared += 1;
        }
      }
    }
    expect(compared).toBeGreaterThan(40);
    // The cases met both parses and errors, so the comparison covers each.
    const outcomes = UPDATE_CASES.flatMap(({ text, names, values }) =>
      values.map((v) => JSON.stringify(outcome(original, text, freshContext(names, v, false)))),
    );
    expect(outcomes.some((text) => text.includes('"thrown"') || /"result":"[^"]+"/.test(text))).toBe(true);
    expect(outcomes.some((text) => text.includes('"sections"') || text.includes('"ADD"') || text.includes('"SET"'))).toBe(true);
  });

  it('marks as used only what the expression uses, whatever other expressions of the request used', () => {
    const remembering = rememberingParse(dynaliteConditionParse());
    const text = '#a = :a';
    const first = freshContext({ '#a': 'a', '#b': 'b' }, { ':a': N(1), ':b': N(2) }, false);
    delete first.unusedAttrNames!['#a']; // an update expression of the same request used #a first
    remembering(text, { context: first });
    const second = freshContext({ '#a': 'a', '#b': 'b' }, { ':a': N(3), ':b': N(4) }, false);
    remembering(text, { context: second });
    expect(second.unusedAttrNames).toEqual({ '#b': true });
    expect(second.unusedAttrVals).toEqual({ ':b': true });
  });

  it('gives each request a tree of its own, so changing one changes no other', () => {
    const remembering = rememberingParse(dynaliteConditionParse());
    const first = remembering('#v = :v', { context: freshContext({ '#v': 'v' }, { ':v': N(1) }, false) }) as { expression: { args: unknown[] } };
    first.expression.args.length = 0;
    const second = remembering('#v = :v', { context: freshContext({ '#v': 'v' }, { ':v': N(2) }, false) }) as { expression: { args: unknown[] } };
    expect(second.expression.args).toEqual([['v'], { N: '2' }]);
  });
});
