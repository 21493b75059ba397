/**
 * The core's imports run one way. A cycle, even through types alone, means two modules can only be understood
 * (and changed) together; and the core imports nothing from the adapters, handlers or the command line.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const CORE = join(REPO, 'functions', 'core');

/** Every module the file imports or re-exports, type-only imports included, as a path relative to the repo. */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return importedFiles
    .map((imported) => imported.fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => relative(REPO, resolve(dirname(file), specifier.replace(/\.js$/, '.ts'))));
}

function coreGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const files = readdirSync(CORE, { recursive: true, encoding: 'utf8' }).filter((name) => name.endsWith('.ts'));
  for (const name of files) graph.set(relative(REPO, join(CORE, name)), importsOf(join(CORE, name)));
  return graph;
}

/** Each cycle found by a depth-first walk, as the path that closes it (a → b → a). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const walk = (module: string, path: string[]): void => {
    const open = path.indexOf(module);
    if (open >= 0) {
      cycles.push([...path.slice(open), module]);
      return;
    }
    if (done.has(module) || !graph.has(module)) return;
    for (const next of graph.get(module)!) walk(next, [...path, module]);
    done.add(module);
  };
  for (const module of [...graph.keys()].sort()) walk(module, []);
  return cycles;
}

describe('functions/core imports', () => {
  const graph = coreGraph();

  it('finds the modules and their imports', () => {
    expect(graph.size).toBeGreaterThan(20);
    expect(graph.get('functions/core/decide.ts')).toContain('functions/core/ruleset.ts');
  });

  it('has no import cycle, type-only imports included', () => {
    expect(findCycles(graph).map((cycle) => cycle.map((module) => module.replace('functions/core/', '')).join(' → '))).toEqual([]);
  });

  it('imports nothing from the adapters, the handlers or the command line', () => {
    const outward = [...graph].flatMap(([module, imports]) =>
      imports.filter((target) => !target.startsWith('functions/core/')).map((target) => `${module} → ${target}`),
    );
    expect(outward).toEqual([]);
  });

  it('reports a cycle when there is one', () => {
    const cyclic = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ]);
    expect(findCycles(cyclic)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']]);
  });
});
