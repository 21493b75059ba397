/**
 * A headless Chromium for the browser tests (and the README screenshot they can refresh), launched through
 * playwright-core. A system chromium is used when there is one, so a developer's distribution browser keeps
 * working; otherwise the Chromium that `npm install` brought in @sparticuz/chromium, so `npm test` needs nothing
 * but Node and npm. Set STRATA_CHROMIUM to a browser binary to choose one explicitly.
 */
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';

const REPO = join(import.meta.dirname, '..', '..');
const SYSTEM_BROWSERS = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
// Headless with no sandbox (CI runs as root), and nothing that would reach the network or write a shared profile;
// playwright gives every launch a fresh, temporary --user-data-dir.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export class BrowserUnavailableError extends Error {
  override readonly name = 'BrowserUnavailableError';
}

const isExecutable = async (path: string): Promise<boolean> =>
  access(path, constants.X_OK).then(
    () => true,
    () => false,
  );

async function systemBrowser(): Promise<string | undefined> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter(Boolean)) {
    for (const name of SYSTEM_BROWSERS) {
      if (await isExecutable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

interface BundledBrowser {
  executablePath: string;
  env: Record<string, string>;
}

/**
 * Unpacks @sparticuz/chromium once per version into node_modules/.cache. The package unpacks into os.tmpdir(), so
 * it runs with TMPDIR pointed at a private staging folder that is then renamed into place: two test processes
 * starting at once never launch a half-written binary, and nothing is left in the shared temp folder.
 */
async function bundledBrowser(): Promise<BundledBrowser> {
  const require = createRequire(join(REPO, 'package.json'));
  // The package exports no package.json; its entry point is build/cjs/index.cjs.
  const packageDir = join(dirname(require.resolve('@sparticuz/chromium')), '..', '..');
  const { version } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { version: string };
  const cacheRoot = join(REPO, 'node_modules', '.cache', 'strata-chromium');
  const target = join(cacheRoot, version);
  const binary = join(target, 'chromium');
  if (!(await isExecutable(binary))) {
    await mkdir(cacheRoot, { recursive: true });
    const staging = await mkdtemp(join(cacheRoot, `${version}-staging-`));
    const previousTmpdir = process.env['TMPDIR'];
    try {
      process.env['TMPDIR'] = staging;
      const { default: Chromium } = await import('@sparticuz/chromium');
      Chromium.setGraphicsMode = false;
      await Chromium.executablePath(join(packageDir, 'bin'));
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw new BrowserUnavailableError(
        `browser tests: could not unpack @sparticuz/chromium ${version} (run \`npm install\` again, or set STRATA_CHROMIUM to a Chromium binary)`,
        { cause: error },
      );
    } finally {
      if (previousTmpdir === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = previousTmpdir;
    }
    // The package's own fonts.conf names Lambda's folders; this one adds its Open Sans to the system's fonts, so
    // text renders on a machine with no fonts installed.
    await writeFile(
      join(staging, 'strata-fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n  <dir>${join(target, 'fonts')}</dir>\n  <cachedir>${join(target, 'fonts-cache')}</cachedir>\n</fontconfig>\n`,
    );
    await rename(staging, target).catch(async (error: NodeJS.ErrnoException) => {
      // Another process finished first: use its copy.
      await rm(staging, { recursive: true, force: true });
      if (!(await isExecutable(binary))) throw error;
    });
  }
  return { executablePath: binary, env: { FONTCONFIG_FILE: join(target, 'strata-fonts.conf') } };
}

/** Launches headless Chromium: STRATA_CHROMIUM, else a system chromium, else the one from @sparticuz/chromium. */
export async function launchBrowser(): Promise<Browser> {
  const chosen = process.env['STRATA_CHROMIUM'] || (await systemBrowser());
  if (chosen) return chromium.launch({ executablePath: chosen, args: CHROMIUM_ARGS });
  const bundled = await bundledBrowser();
  return chromium.launch({ executablePath: bundled.executablePath, args: CHROMIUM_ARGS, env: { ...process.env, ...bundled.env } });
}
