#!/usr/bin/env node
// Writes docs/img/dashboard.png: the dashboard page in Debian's headless Chromium.
//   node scripts/dashboard-screenshot.mjs [--url http://host:port/dashboard] [--out file.png]
// Without --url it runs a real agent (the compiled tree: `npx tsc -p .` first) in a temp dir,
// with a SQLite store from `vigil state init` and a metrics listener, signs a few slots through
// its socket, asks for one conflicting slot (refused), and photographs its /dashboard.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const { values } = parseArgs({
  options: { url: { type: 'string' }, out: { type: 'string', default: 'docs/img/dashboard.png' } },
});

async function demoAgent() {
  const helpers = await import('../dist/test/helpers/agent-process.js');
  const dir = mkdtempSync(join(tmpdir(), 'vigil-screenshot-'));
  const config = helpers.writeSlotAgent(
    { dir, storePath: join(dir, 'store.db'), dataDir: join(dir, 'data') },
    'validator-1',
  );
  appendFileSync(config, 'metricsListen: { host: 127.0.0.1, port: 0 }\n');
  const agent = await helpers.startAgentProcess(config);
  const ready = agent
    .output()
    .split('\n')
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return {};
      }
    })
    .find((l) => l.msg === 'agent ready');
  for (const slot of [101, 102, 103, 104])
    await agent.client.request('POST', '/v1/sign', helpers.babeSignBody(slot));
  await agent.client.request('POST', '/v1/sign', helpers.babeSignBody(104, 'other block'));
  await agent.client.request('POST', '/v1/sign', helpers.babeSignBody(99));
  return {
    url: `${ready.metricsUrl}/dashboard`,
    async stop() {
      await agent.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const demo = values.url ? undefined : await demoAgent();
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox'],
  timeout: 30_000,
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(values.url ?? demo.url, { timeout: 10_000 });
  await page.locator('#state', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: values.out, fullPage: true });
  console.log(`wrote ${values.out}`);
} finally {
  await browser.close();
  await demo?.stop();
}
