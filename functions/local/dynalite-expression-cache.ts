/**
 * dynalite parses every condition expression (ConditionExpression, KeyConditionExpression, FilterExpression) and
 * update expression with a backtracking PEG parser, on every request. The store's guard on a day bucket,
 * `NOT contains(#ids, :key) AND attribute_not_exists(#hv) AND (attribute_not_exists(#ids) OR size(#ids) < :limit)`,
 * took about a third of dynalite's thread under full ingest, parsed anew for each event although only the values
 * differ.
 *
 * This remembers each parse by what it can depend on, and gives later requests the same tree with their own values
 * put in. What a parse can depend on:
 * - the expression text, whether it is a key condition, and the attribute names (resolved into the tree);
 * - each value's type (size, begins_with and the operand checks look at it), so the type is in the key;
 * - a value's content only for BETWEEN (which compares the bounds) and attribute_type (which reads the type name):
 *   an expression with either is remembered under its full values.
 * The parse also marks the names and values it used; a remembered parse marks the same ones. Only parses that
 * succeed are remembered: an error is produced by dynalite's own parse each time.
 */
import { createRequire } from 'node:module';

interface AttributeValue {
  [type: string]: unknown;
}

/** The context dynalite's validations hand to the parser (validations/index.js, validateExpressions). */
export interface ParseContext {
  attrNames?: Record<string, string>;
  attrVals?: Record<string, AttributeValue>;
  unusedAttrNames?: Record<string, boolean>;
  unusedAttrVals?: Record<string, boolean>;
  isKeyCondition?: boolean;
  [other: string]: unknown;
}

export interface ExpressionParser {
  parse(text: string, options: { context: ParseContext }): unknown;
}

interface Remembered {
  tree: unknown;
  /** The values the tree holds (by identity), by their placeholder. */
  values: Map<string, AttributeValue>;
  usedNames: string[];
  usedValues: string[];
}

/** Distinct expressions are few (the store's own dozen or so); the bound only matters for other callers. */
const MAX_REMEMBERED = 1_000;
const READS_CONTENT = /between|attribute_type/i;

/** Returns a parse function with dynalite's behaviour that parses each distinct expression shape once. */
export function rememberingParse(parse: ExpressionParser['parse']): ExpressionParser['parse'] {
  const remembered = new Map<string, Remembered>();
  return (text, options) => {
    const { context } = options;
    const key = cacheKey(text, context);
    let entry = remembered.get(key);
    if (!entry) {
      // Parsed with every name and value unused, so that what this expression uses is known whatever other
      // expressions of the same request used before it.
      const probe: ParseContext = {
        ...context,
        unusedAttrNames: Object.fromEntries(Object.keys(context.attrNames ?? {}).map((name) => [name, true])),
        unusedAttrVals: Object.fromEntries(Object.keys(context.attrVals ?? {}).map((name) => [name, true])),
      };
      const markUsed = (): { usedNames: string[]; usedValues: string[] } => {
        const usedNames = Object.keys(context.attrNames ?? {}).filter((name) => !(name in probe.unusedAttrNames!));
        const usedValues = Object.keys(context.attrVals ?? {}).filter((name) => !(name in probe.unusedAttrVals!));
        for (const name of usedNames) delete context.unusedAttrNames?.[name];
        for (const name of usedValues) delete context.unusedAttrVals?.[name];
        return { usedNames, usedValues };
      };
      let tree: unknown;
      try {
        tree = parse(text, { ...options, context: probe });
      } catch (error) {
        markUsed();
        throw error;
      }
      const { usedNames, usedValues } = markUsed();
      // An error message is not remembered: dynalite's own parse produces it each time.
      if (typeof tree !== 'object' || tree === null) return tree;
      const values = new Map(Object.entries(context.attrVals ?? {}));
      entry = {
        // A copy, so that whatever dynalite later does with the tree it is given cannot change the remembered one;
        // the values stay the very objects of this request, which is how a later request's values replace them.
        tree: copyReplacing(tree, new Map([...values.values()].map((value) => [value, value]))),
        values,
        usedNames,
        usedValues,
      };
      if (remembered.size >= MAX_REMEMBERED) remembered.clear();
      remembered.set(key, entry);
    } else {
      for (const name of entry.usedNames) delete context.unusedAttrNames?.[name];
      for (const name of entry.usedValues) delete context.unusedAttrVals?.[name];
    }
    const replacements = new Map<unknown, unknown>();
    for (const [name, value] of entry.values) replacements.set(value, context.attrVals?.[name]);
    return copyReplacing(entry.tree, replacements);
  };
}

function cacheKey(text: string, context: ParseContext): string {
  const values = context.attrVals ?? {};
  const readsContent = READS_CONTENT.test(text);
  const valueKey = Object.keys(values)
    .sort()
    .map((name) => `${name}=${readsContent ? JSON.stringify(values[name]) : typeOf(values[name])}`)
    .join(',');
  const names = context.attrNames ?? {};
  const nameKey = Object.keys(names)
    .sort()
    .map((name) => `${name}=${names[name]}`)
    .join(',');
  return JSON.stringify([text, context.isKeyCondition === true, nameKey, valueKey]);
}

/** The attribute types present in a value, as dynalite's type checks see them (the first non-null of its types). */
function typeOf(value: AttributeValue | undefined): string {
  if (!value || typeof value !== 'object') return String(value);
  return Object.keys(value)
    .filter((type) => value[type] !== null && value[type] !== undefined)
    .sort()
    .join('|');
}

/** A deep copy of a parse tree in which each object found in `replacements` (by identity) is swapped for its value. */
function copyReplacing(node: unknown, replacements: Map<unknown, unknown>): unknown {
  if (replacements.has(node)) return replacements.get(node);
  if (Array.isArray(node)) return node.map((item) => copyReplacing(item, replacements));
  if (node === null || typeof node !== 'object') return node;
  const copy: Record<string, unknown> = Object.create(Object.getPrototypeOf(node) as object | null) as Record<string, unknown>;
  for (const [field, value] of Object.entries(node)) copy[field] = copyReplacing(value, replacements);
  return copy;
}

type DynaliteParser = ExpressionParser & { originalParse?: ExpressionParser['parse'] };

/**
 * The expression parsers remembered: conditions (ConditionExpression, KeyConditionExpression, FilterExpression) and
 * UpdateExpression. The update parser depends on the context as the condition parser does (names resolved into the
 * tree, values put in by identity, a value's type checked for ADD, DELETE, list_append and arithmetic, placeholders
 * marked used) and reads no value's content, so the same key holds for it. Every UpdateItem of the store parsed its
 * expression anew, and a parser run that often was also optimised by V8 again and again.
 */
const REMEMBERED_PARSERS = ['conditionParser', 'updateParser'] as const;
type ParserName = (typeof REMEMBERED_PARSERS)[number];

/** One of dynalite's expression parser modules, the ones its validations load. */
function dynaliteParser(name: ParserName): DynaliteParser {
  const fromDynalite = createRequire(createRequire(import.meta.url).resolve('dynalite'));
  return fromDynalite(`./db/${name}`) as DynaliteParser;
}

/** Makes dynalite (in the calling thread) parse each distinct condition and update expression shape once. */
export function rememberDynaliteExpressionParses(): void {
  for (const name of REMEMBERED_PARSERS) {
    const parser = dynaliteParser(name);
    if (parser.originalParse) continue;
    parser.originalParse = parser.parse.bind(parser);
    parser.parse = rememberingParse(parser.originalParse);
  }
}

/** dynalite's own parse of one kind of expression, without remembering: what the remembering one is compared with. */
function dynaliteOwnParse(name: ParserName): ExpressionParser['parse'] {
  const parser = dynaliteParser(name);
  return parser.originalParse ?? parser.parse.bind(parser);
}

export const dynaliteConditionParse = (): ExpressionParser['parse'] => dynaliteOwnParse('conditionParser');
export const dynaliteUpdateParse = (): ExpressionParser['parse'] => dynaliteOwnParse('updateParser');
