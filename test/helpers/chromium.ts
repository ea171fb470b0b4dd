/**
 * Debian's Chromium for browser tests, driven by playwright-core: never a downloaded browser.
 * Without /usr/bin/chromium the tests skip loudly, except under CI (or
 * VIGIL_REQUIRE_CHROMIUM=1), where its absence fails them.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** For `test(..., { skip: chromiumSkip() })`. */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI || process.env.VIGIL_REQUIRE_CHROMIUM === '1')
    throw new Error(`CI is set (or VIGIL_REQUIRE_CHROMIUM=1) but ${CHROMIUM} is missing`);
  const why = `SKIPPED: ${CHROMIUM} not found (apt-get install chromium); the browser test did not run`;
  console.warn(why);
  return why;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox'],
    timeout: 30_000,
  });
}
