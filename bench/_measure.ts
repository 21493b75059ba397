import '../functions/local/cli-environment.js';
import { loadRulesetOrThrow } from '../functions/core/ruleset.js';
import { readProjectFiles } from '../functions/local/project-files.js';
import { measureHeavyUser } from './capacity.js';
const ruleset = loadRulesetOrThrow(await readProjectFiles('.'));
const started = Date.now();
const r = await measureHeavyUser(ruleset, { eventsPerDay: Number(process.argv[2] ?? 1000), days: 1, extremeEvents: Number(process.argv[3] ?? 2000), windowEventsPerDay: Number(process.argv[4] ?? 200) });
console.log(JSON.stringify(r), (Date.now() - started) / 1000, 's');
