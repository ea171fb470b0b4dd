/** What a cardano-node release can do, by its version (facts from the cardano-node sources). */

/**
 * The flag that starts cardano-node without forging although credentials are given:
 * `--start-as-non-producing-node` from 10.5.1, before it `--non-producing-node` (8.7.2 up, the
 * first release whose SIGHUP handler reloads forging credentials); older releases have no way
 * to run a hot standby (undefined). Recorded in test/render/upstream-node-flags.json.
 */
export function cardanoNonProducingFlag(version: string | undefined): string | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return undefined;
  const v = [Number(m[1]), Number(m[2]), Number(m[3])] as const;
  const atLeast = (a: number, b: number, c: number) =>
    v[0] !== a ? v[0] > a : v[1] !== b ? v[1] > b : v[2] >= c;
  if (atLeast(10, 5, 1)) return '--start-as-non-producing-node';
  if (atLeast(8, 7, 2)) return '--non-producing-node';
  return undefined;
}
