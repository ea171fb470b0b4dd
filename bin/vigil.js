#!/usr/bin/env node
// The CLI is compiled by `npm run build`, which `npm install` / `npm ci` run through `prepare`.
import '../dist/src/cli/run.js';
