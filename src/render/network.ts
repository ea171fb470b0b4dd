/** Host firewall (nftables) and the WireGuard full mesh. */
import type { Plan, PlannedHost, PortRule } from '../topology/plan.js';

export const WG_INTERFACE = 'wg0';

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

/** Default deny in and forward; everything a host accepts is listed with why. */
export function renderNftables(plan: Plan, host: PlannedHost): string {
  const lines = [
    '#!/usr/sbin/nft -f',
    `# Vigil firewall for ${host.name} (${host.role}). Generated: edit the topology, not this file.`,
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

/** Installed on every host; `terraform apply` calls it over SSH with peers' public IPs.
 * Arguments are PUBKEY@IP:PORT (base64 keys may contain '=' but never '@'). */
export const WG_ENDPOINTS_SCRIPT = `#!/bin/sh
# Sets WireGuard peer endpoints once public addresses are known, and saves them.
set -eu
for pair in "$@"; do
  pub="\${pair%@*}"
  endpoint="\${pair##*@}"
  wg set ${WG_INTERFACE} peer "$pub" endpoint "$endpoint"
done
wg-quick save ${WG_INTERFACE}
`;
