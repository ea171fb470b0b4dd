#!/usr/bin/env node
// Runs the alert rules' `promtool test rules` cases, one test group at a time, and prints
// `promtool rules: N passed, M failed` (CI's own count for them). Reads the compiled rules and
// cases from dist (VIGIL_BUILD_DIR picks another tree): run `npx tsc -p .` first.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const build = resolve(process.env.VIGIL_BUILD_DIR ?? 'dist');
const load = (path) => import(pathToFileURL(join(build, path)).href);
const { signerAlertRules } = await load('src/render/alert-rules.js');
const { RULE_TESTS } = await load('test/render/alert-rule-cases.js');
const { runRuleTests } = await load('test/helpers/promtool.js');

let results;
try {
  results = runRuleTests(signerAlertRules(), RULE_TESTS);
} catch (err) {
  console.error(`promtool rules: cannot run promtool: ${err.message}`);
  process.exit(1);
}
const failed = results.filter((r) => !r.passed);
for (const r of results) console.log(`${r.passed ? 'ok    ' : 'FAILED'} ${r.name}`);
for (const r of failed) console.error(`\n--- ${r.name}\n${r.output}`);
console.log(`promtool rules: ${results.length - failed.length} passed, ${failed.length} failed`);
process.exit(failed.length > 0 || results.length === 0 ? 1 : 0);
