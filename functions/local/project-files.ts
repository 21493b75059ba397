/**
 * Reads a Strata project's rule, journey and channel files into the path → text map that the core loads. The only place
 * that touches the file system for configuration; the CLI, the embedded stack and the CDK app all use it.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProjectFiles } from '../core/ruleset.js';
import { CHANNELS_FILE } from '../core/channels.js';

export const PROJECT_FOLDERS = ['rules', 'journeys'] as const;

export async function readProjectFiles(projectDir: string): Promise<ProjectFiles> {
  const files: ProjectFiles = {};
  for (const folder of PROJECT_FOLDERS) {
    let names: string[];
    try {
      names = await readdir(join(projectDir, folder));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    for (const name of names.sort()) {
      if (!name.endsWith('.json')) continue;
      files[`${folder}/${name}`] = await readFile(join(projectDir, folder, name), 'utf8');
    }
  }
  try {
    files[CHANNELS_FILE] = await readFile(join(projectDir, CHANNELS_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return files;
}
