/** Host firewall (nftables) and the WireGuard full mesh. */
import type { Plan, PlannedHost, PortRule } from '../topology/plan.js';
import type { Topology } from '../topology/schema.js';

export const WG_INTERFACE = 'wg0';

/**
 * The chain node user's uid, fixed so the firewall can name it numerically: the rules are
 * checked (`nft -c`) and loaded where the user may not exist yet. Inside the regular-user
 * range's top, which cloud images leave empty, and below systemd's DynamicUser range (61184+).
 */
export const NODE_UID = 59990;

/** Cloud metadata services: user data, instance credentials. 169.254.169.254 everywhere;
 * AWS also answers on an IPv6 address on Nitro instances. */
export const METADATA_V4 = '169.254.169.254';
export const METADATA_V6_AWS = 'fd00:ec2::254';

/** Where the peers' public endpoints live on the host; written by `vigil apply` (push). */
export const WG_ENDPOINTS_FILE = '/etc/wireguard/wg0.endpoints';

function isV6(cidr: string): boolean {
  return cidr.includes(':');
}

function ruleLines(rule: PortRule, sshFrom: readonly string[]): string[] {
  const proto = `${rule.proto} dport ${rule.port}`;
  const comment = `comment "${rule.purpose.replace(/"/g, "'")}"`;
  const iface = rule.vpnOnly ? `iifname "${WG_INTERFACE}" ` : '';
  if (rule.from === 'any') return [`${iface}${proto} accept ${comment}`];
  if (rule.from === 'ssh') {
    const v4 = sshFrom.filter((c) => !isV6(c));
    const v6 = sshFrom.filter(isV6);
    const out: string[] = [];
    if (v4.includes('0.0.0.0/0')) out.push(`meta nfproto ipv4 ${iface}${proto} accept ${comment}`);
    else if (v4.length > 0)
      out.push(`${iface}ip saddr { ${v4.join(', ')} } ${proto} accept ${comment}`);
    if (v6.includes('::/0')) out.push(`meta nfproto ipv6 ${iface}${proto} accept ${comment}`);
    else if (v6.length > 0)
      out.push(`${iface}ip6 saddr { ${v6.join(', ')} } ${proto} accept ${comment}`);
    return out;
  }
  if (rule.from.length === 0)
    return [`# ${rule.purpose}: no other host needs it (this host reaches itself over loopback)`];
  return [`${iface}ip saddr { ${rule.from.join(', ')} } ${proto} accept ${comment}`];
}

/** nftables lines for one port rule, with the topology's SSH sources. */
export function ruleLinesFor(rule: PortRule, t: Topology): string[] {
  return ruleLines(rule, t.ssh.allowFrom);
}

/**
 * The start of every Vigil ruleset, the bootstrap one included: a fresh table whose input
 * chain drops by default and accepts replies, loopback and the ICMP that keeps paths working.
 */
export function nftablesInputHead(comment: string): string[] {
  return [
    '#!/usr/sbin/nft -f',
    `# ${comment}`,
    'flush ruleset',
    '',
    'table inet vigil {',
    '  chain input {',
    '    type filter hook input priority filter; policy drop;',
    '    ct state established,related accept',
    '    ct state invalid drop',
    '    iifname "lo" accept',
    '    ip protocol icmp icmp type { echo-request, destination-unreachable, time-exceeded } accept',
    '    meta l4proto ipv6-icmp accept',
  ];
}

/** Default deny in and forward; everything a host accepts is listed with why. */
export function renderNftables(plan: Plan, host: PlannedHost): string {
  const lines = nftablesInputHead(
    `Vigil firewall for ${host.name} (${host.role}). Generated: edit the topology, not this file.`,
  );
  for (const rule of host.ports)
    for (const l of ruleLines(rule, plan.topology.ssh.allowFrom)) lines.push(`    ${l}`);
  lines.push(
    '  }',
    '',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '  }',
    '',
    '  chain output {',
    '    type filter hook output priority filter; policy accept;',
    // The node faces the internet (p2p, RPC): if it is taken over, it must not fetch the
    // instance's metadata (user data, cloud credentials).
    ...(host.chain
      ? [
          `    meta skuid ${NODE_UID} ip daddr ${METADATA_V4} drop comment "chain node: no metadata service"`,
          ...(host.provider === 'aws'
            ? [
                `    meta skuid ${NODE_UID} ip6 daddr ${METADATA_V6_AWS} drop comment "chain node: no metadata service"`,
              ]
            : []),
        ]
      : []),
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}

/** wg-quick config: every other host is a peer with exactly its /32. Endpoints are learned
 * after the machines exist (public IPs come from Terraform) and set by vigil-wg-endpoints. */
export function renderWireguard(plan: Plan, host: PlannedHost): string {
  const lines = [
    `# WireGuard mesh for ${host.name}. Endpoints are filled in after apply.`,
    '[Interface]',
    `Address = ${host.vpnAddress}/32`,
    `ListenPort = ${plan.topology.vpn.port}`,
    `PrivateKey = ${host.wireguard.privateKey}`,
    // Endpoints are public addresses, known only after the machines exist: kept apart so
    // this file never changes when an address does (wg-quick only; the local fleet strips it).
    'PostUp = /usr/local/sbin/vigil-wg-endpoints',
  ];
  for (const peer of plan.hosts) {
    if (peer.name === host.name) continue;
    lines.push(
      '',
      `# ${peer.name} (${peer.role}, ${peer.provider} ${peer.region})`,
      '[Peer]',
      `PublicKey = ${peer.wireguard.publicKey}`,
      `AllowedIPs = ${peer.vpnAddress}/32`,
      'PersistentKeepalive = 25',
    );
  }
  return lines.join('\n') + '\n';
}

/** Installed on every host; run by wg-quick (PostUp) and by the bundle when `vigil apply`
 * has written new endpoints. Lines of the file are `PUBKEY HOST:PORT`. */
export const WG_ENDPOINTS_SCRIPT = `#!/bin/sh
# Sets WireGuard peer endpoints from ${WG_ENDPOINTS_FILE} (written by vigil apply).
set -eu
[ -f ${WG_ENDPOINTS_FILE} ] || exit 0
while read -r pub endpoint; do
  [ -n "$pub" ] || continue
  wg set ${WG_INTERFACE} peer "$pub" endpoint "$endpoint"
done < ${WG_ENDPOINTS_FILE}
`;
