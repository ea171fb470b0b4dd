/**
 * The agent's dashboard end to end: a real `vigil agent` process (SQLite store initialised by
 * `vigil state init`, a BABE key) with a metrics listener, signed through its unix socket,
 * and its /dashboard page opened in headless Chromium. The page must show the agent, its
 * chain and the new watermark, follow a second signature without a reload, list a refused
 * request under refusals, and render a hostile chain id as text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { babeSignBody, startAgentProcess, writeSlotAgent } from '../helpers/agent-process.js';
import { CHAIN, babeHeader, tempDir } from '../helpers/guard-fixtures.js';
import { chromiumSkip, launchChromium } from '../helpers/chromium.js';

/** Waits (bounded) until the section's text contains every string; fails with what it shows. */
async function waitForText(page: Page, section: string, wanted: readonly string[]) {
  try {
    // Locators, not page functions: the page's CSP forbids eval, which string predicates use.
    let locator = page.locator(`#${section}`);
    for (const w of wanted) locator = locator.filter({ hasText: w });
    await locator.waitFor({ state: 'attached', timeout: 10_000 });
  } catch (err) {
    const shown = await page.locator(`#${section}`).textContent();
    throw new Error(`#${section} never showed ${JSON.stringify(wanted)}; it shows: ${shown}`, {
      cause: err,
    });
  }
}

test(
  'the agent dashboard shows the agent, its chain and watermark, follows signatures live and lists refusals',
  { skip: chromiumSkip(), timeout: 120_000 },
  async () => {
    const { dir, cleanup } = tempDir('vigil-dashboard-');
    const config = writeSlotAgent(
      { dir, storePath: join(dir, 'store.db'), dataDir: join(dir, 'data') },
      'dash-agent',
    );
    appendFileSync(config, 'metricsListen: { host: 127.0.0.1, port: 0 }\n');
    const agent = await startAgentProcess(config);
    const browser = await launchChromium().catch(async (err: unknown) => {
      await agent.kill();
      cleanup();
      throw err;
    });
    try {
      const ready = agent
        .output()
        .split('\n')
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as { msg?: string; metricsUrl?: string }];
          } catch {
            return [];
          }
        })
        .find((l) => l.msg === 'agent ready');
      const metricsUrl = ready?.metricsUrl;
      assert.ok(metricsUrl, `no metricsUrl in the agent's ready line:\n${agent.output()}`);

      // The dashboard is on the read-only listener only, never on the signing API.
      assert.equal((await agent.client.get('/dashboard')).status, 404);
      assert.equal((await agent.client.get('/v1/overview')).status, 404);

      const first = await agent.client.request('POST', '/v1/sign', babeSignBody(5));
      assert.equal(first.status, 200, JSON.stringify(first.body));

      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      const res = await page.goto(`${metricsUrl}/dashboard`, { timeout: 10_000 });
      assert.equal(res?.status(), 200);
      assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'sha256-/);

      await waitForText(page, 'agents', ['dash-agent', 'ready', 'sqlite']);
      assert.doesNotMatch((await page.locator('#agents').textContent()) ?? '', /down/);
      await waitForText(page, 'watermarks', [CHAIN, 's1', 'slot', 'slot 5', 'dash-agent']);
      await waitForText(page, 'signatures', [CHAIN, 'slot 5']);
      assert.equal(await page.locator('#state').textContent(), 'live');

      // A second signature shows up without a reload.
      const second = await agent.client.request('POST', '/v1/sign', babeSignBody(9));
      assert.equal(second.status, 200, JSON.stringify(second.body));
      await waitForText(page, 'watermarks', ['slot 9']);
      assert.doesNotMatch((await page.locator('#watermarks').textContent()) ?? '', /slot 5\b/);
      await waitForText(page, 'signatures', ['slot 9']);

      // A slot behind the watermark is refused and listed, with its reason.
      const behind = await agent.client.request('POST', '/v1/sign', babeSignBody(7, 'b'));
      assert.equal(behind.status, 409, JSON.stringify(behind.body));
      await waitForText(page, 'refusals', ['regression', CHAIN, 's1', 'dash-agent']);
      await waitForText(page, 'refusal-counts', ['regression']);

      // A chain id that is HTML is shown as text: no element is made from it.
      const hostile = '<img id="injected" src="x" onerror="window.__pwned=1">';
      const odd = await agent.client.post('/v1/sign', {
        family: 'slot',
        chainId: hostile,
        keyId: 's1',
        position: { slot: '11' },
        payload: Buffer.from(babeHeader(11n, 'c')).toString('hex'),
      });
      assert.equal(odd.status, 403, JSON.stringify(odd.body));
      await waitForText(page, 'refusals', [hostile, 'unknown_chain']);
      assert.equal(await page.locator('#injected').count(), 0);
      assert.equal(
        await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned),
        undefined,
      );

      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await agent.kill();
      cleanup();
    }
  },
);
