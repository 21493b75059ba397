/**
 * JSON parsing that reports where a syntax error is, as line and column, with the same wording on every Node
 * version (V8's own messages change between releases and sometimes omit the position).
 */

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; message: string; line: number; column: number };

export function parseJsonText(text: string): JsonParseResult {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    const { offset, message } = locateSyntaxError(text);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    return { ok: false, message: `invalid JSON: ${message}`, line, column };
  }
}

class SyntaxStop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

/** A minimal JSON scanner used only after JSON.parse has failed, to find and name the first error. */
function locateSyntaxError(text: string): { offset: number; message: string } {
  let i = 0;
  const fail = (message: string): never => {
    throw new SyntaxStop(i, message);
  };
  const describe = (): string => (i >= text.length ? 'end of file' : `'${text[i]}'`);
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const expectLiteral = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail(`unexpected ${describe()}; expected a value (did you mean ${word}?)`);
  };
  const scanString = (): void => {
    i++;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        i++;
        if (i >= text.length) break;
        if (!'"\\/bfnrtu'.includes(text[i]!)) fail(`invalid escape '\\${text[i]}' in a string`);
        if (text[i] === 'u' && !/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('invalid \\u escape in a string');
      } else if (c === '\n') {
        fail('a string is not closed before the end of the line');
      }
      i++;
    }
    fail('a string is not closed before the end of the file');
  };
  const scanNumber = (): void => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match) fail(`unexpected ${describe()}; expected a number`);
    i += match![0].length;
  };
  const scanValue = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') return scanObject();
    if (c === '[') return scanArray();
    if (c === '"') return scanString();
    if (c === 't') return expectLiteral('true');
    if (c === 'f') return expectLiteral('false');
    if (c === 'n') return expectLiteral('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return scanNumber();
    if (c === "'") fail('strings must use double quotes, not single quotes');
    fail(`unexpected ${describe()}; expected a value`);
  };
  const scanObject = (): void => {
    i++;
    skipSpace();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (text[i] === '}') fail("a trailing comma before '}' is not allowed in JSON");
      if (text[i] !== '"') fail(`unexpected ${describe()}; expected a property name in double quotes`);
      scanString();
      skipSpace();
      if (text[i] !== ':') fail(`unexpected ${describe()}; expected ':' after the property name`);
      i++;
      scanValue();
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return;
      }
      fail(`unexpected ${describe()}; expected ',' or '}' after a property value`);
    }
  };
  const scanArray = (): void => {
    i++;
    skipSpace();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      skipSpace();
      if (text[i] === ']') fail("a trailing comma before ']' is not allowed in JSON");
      scanValue();
      skipSpace();
      if (text[i] === ',') {
        i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return;
      }
      fail(`unexpected ${describe()}; expected ',' or ']' after an array element`);
    }
  };
  try {
    scanValue();
    skipSpace();
    if (i < text.length) fail(`unexpected ${describe()} after the end of the JSON document`);
    return { offset: 0, message: 'the document could not be parsed' };
  } catch (error) {
    if (error instanceof SyntaxStop) return { offset: error.offset, message: error.message };
    throw error;
  }
}
