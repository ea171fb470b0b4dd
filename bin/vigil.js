#!/usr/bin/env node
// The CLI is compiled by `npm run build` (run automatically by `npm install` / `npm ci`).
import { main } from '../dist/src/cli/main.js';

await main(process.argv);
