import { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { formatJsonSchemas } from '../../core/json-schemas.js';
import type { CliOutput } from '../output.js';

export async function writeJsonSchemas(outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, schema] of Object.entries(formatJsonSchemas())) {
    await writeFile(join(outDir, name), JSON.stringify(schema, null, 2) + '\n');
    written.push(name);
  }
  return written;
}

export function schemasCommand(out: CliOutput): Command {
  return new Command('schemas')
    .description('write the JSON Schemas of the rule, journey and event formats, for editor autocompletion')
    .option('--out <dir>', 'where to write them', 'schemas')
    .action(async (options: { out: string }) => {
      const names = await writeJsonSchemas(resolve(options.out));
      out.info(`wrote ${names.map((n) => join(options.out, n)).join(', ')}`);
    });
}
