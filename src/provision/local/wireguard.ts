/**
 * Brings up a host's rendered WireGuard config in its namespace, as `wg-quick up` would:
 * the interface, the `[Interface]`/`[Peer]` keys through `wg setconf` (wg-quick-only fields
 * such as Address stripped, as `wg-quick strip` does), the address, one route per peer's
 * AllowedIPs, and the peers' endpoints (what the rendered vigil-wg-endpoints script sets once
 * public addresses exist).
 *
 * The kernel module is used where it exists; otherwise Debian's wireguard-go. wireguard-go's
 * control socket is /var/run/wireguard/<ifname>.sock, a path every namespace shares, so the
 * interface is created under a fleet-unique name, configured, and only then renamed to `wg0`,
 * the name the rendered firewall rules match.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { inNetns, run, tryRun } from './exec.js';
import { startInNetns, waitFor } from './processes.js';
import type { RunRecordFile } from './run-record.js';

export const WG_NAME = 'wg0';

/** Fields only wg-quick understands; `wg setconf` refuses them (wg-quick(8), "CONFIGURATION"). */
const WG_QUICK_ONLY = new Set([
  'address',
  'dns',
  'mtu',
  'table',
  'preup',
  'postup',
  'predown',
  'postdown',
  'saveconfig',
]);

export interface ParsedWireguard {
  readonly addresses: readonly string[];
  readonly listenPort: number;
  readonly peers: readonly { publicKey: string; allowedIps: readonly string[] }[];
  /** The config with wg-quick-only fields removed, for `wg setconf`. */
  readonly stripped: string;
}

/** Pure: reads the rendered wg-quick file. */
export function parseWireguard(text: string): ParsedWireguard {
  const addresses: string[] = [];
  const peers: { publicKey: string; allowedIps: string[] }[] = [];
  const kept: string[] = [];
  let listenPort = 0;
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    if (line.startsWith('[')) {
      section = line.toLowerCase();
      if (section === '[peer]') peers.push({ publicKey: '', allowedIps: [] });
      kept.push(line);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    const list = value.split(',').map((v) => v.trim());
    if (section === '[interface]' && key === 'address') addresses.push(...list);
    if (section === '[interface]' && key === 'listenport') listenPort = Number(value);
    const peer = peers.at(-1);
    if (section === '[peer]' && peer && key === 'publickey') peer.publicKey = value;
    if (section === '[peer]' && peer && key === 'allowedips') peer.allowedIps.push(...list);
    if (section === '[interface]' && WG_QUICK_ONLY.has(key)) continue;
    kept.push(line);
  }
  return { addresses, listenPort, peers, stripped: kept.join('\n') + '\n' };
}

export function kernelHasWireguard(netns: string): boolean {
  const probe = 'vglwgprobe';
  if (tryRun(inNetns(netns, ['ip', 'link', 'add', probe, 'type', 'wireguard'])) !== undefined)
    return false;
  tryRun(inNetns(netns, ['ip', 'link', 'del', probe]));
  return true;
}

/**
 * The name `wg` reaches a host's interface by: wg0 in the kernel; for wireguard-go the name it
 * was created under (its control socket keeps that name after the rename to wg0), unique among
 * every namespace's sockets, 15 characters at most.
 */
export function controlName(fleetId: string, hostIndex: number, kernel: boolean): string {
  return kernel ? WG_NAME : `vgl${fleetId}w${hostIndex}`;
}

/** Peers of the host's interface that have completed no handshake yet (public keys). */
export function peersWithoutHandshake(netns: string, name: string): string[] {
  const out = run(inNetns(netns, ['wg', 'show', name, 'latest-handshakes']));
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length === 2 && f[1] === '0')
    .map((f) => f[0]!);
}

export interface WireguardUp {
  readonly netns: string;
  readonly hostIndex: number;
  readonly config: ParsedWireguard;
  /** Peer public key → `address:port`. */
  readonly endpoints: ReadonlyMap<string, string>;
  readonly hostDir: string;
}

export async function bringUpWireguard(record: RunRecordFile, up: WireguardUp): Promise<string> {
  const { netns } = up;
  const confFile = `${up.hostDir}/wg0.setconf`;
  writeFileSync(confFile, up.config.stripped, { mode: 0o600 });
  const kernel = kernelHasWireguard(netns);
  const tempName = controlName(record.record.fleetId, up.hostIndex, kernel);
  if (kernel) {
    run(inNetns(netns, ['ip', 'link', 'add', WG_NAME, 'type', 'wireguard']));
  } else {
    const proc = startInNetns(
      record,
      netns,
      'wireguard-go',
      ['wireguard-go', '--foreground', tempName],
      `${up.hostDir}/wireguard-go.log`,
      // wireguard-go asks for this before running on a kernel that could have the module.
      { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' },
    );
    await waitFor(
      `wireguard-go in ${netns}`,
      () => existsSync(`/var/run/wireguard/${tempName}.sock`),
      proc,
      10_000,
    );
  }
  record.add({ kind: 'link', name: WG_NAME, netns });
  run(inNetns(netns, ['wg', 'setconf', tempName, confFile]));
  for (const [publicKey, endpoint] of up.endpoints)
    run(inNetns(netns, ['wg', 'set', tempName, 'peer', publicKey, 'endpoint', endpoint]));
  if (!kernel) run(inNetns(netns, ['ip', 'link', 'set', tempName, 'name', WG_NAME]));
  for (const a of up.config.addresses)
    run(inNetns(netns, ['ip', 'addr', 'add', a, 'dev', WG_NAME]));
  run(inNetns(netns, ['ip', 'link', 'set', WG_NAME, 'up']));
  for (const peer of up.config.peers)
    for (const ips of peer.allowedIps)
      run(inNetns(netns, ['ip', 'route', 'add', ips, 'dev', WG_NAME]));
  return kernel ? 'kernel' : 'wireguard-go';
}
