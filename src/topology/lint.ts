/**
 * Operators' hard-won rules for a fleet, checked before anything is rendered. Every finding
 * carries a stable code, a severity, a one-line reason and the path in the topology file it
 * concerns. Pure functions: no I/O.
 */
import type { Artifact, Chain, Provider, Role, Topology } from './schema.js';
import { ed25519FromPeerId } from '../registry/peer-id.js';
import { SIGNING_ROLES, expandHosts, signingKey, type ExpandedHost } from './expand.js';
import { lintMonitoring } from './lint-monitoring.js';
import { vigilVersion } from '../package-root.js';
import { cardanoNonProducingFlag } from '../chains/cardano/node-version.js';
import { releaseBinary } from '../release/artifact.js';
import { diskPlan, recipeDataGB, VOLUME_PROVIDERS } from './disks.js';

export type Severity = 'error' | 'warning';

export interface LintFinding {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly path: string;
}

/** Every rule's code and what it guards against, for docs and `vigil plan --rules`. */
export const LINT_RULES = {
  'single-active-signer': 'one key signs on one host at a time unless Vigil guards the key',
  'cardano-relay-count': 'a Cardano block producer needs at least two relays',
  'cardano-producer-isolated': 'a Cardano block producer talks only to its own relays',
  'cardano-hot-standby':
    'a guarded Cardano producer pair needs cardano-node 8.7.2 or later (start without forging, reload keys on SIGHUP)',
  'cometbft-sentry-count': 'a CometBFT validator sits behind at least two sentries',
  'cometbft-validator-isolated': 'a CometBFT validator talks only to its own sentries',
  'peer-address':
    'an extra peer carries what its chain needs to dial it: a CometBFT node id (40 hex digits) or a Substrate peer id',
  'substrate-workers':
    'a Polkadot validator has its prepare and execute worker binaries installed next to it',
  'guard-member-count': 'a guard cluster has an odd number of members, at least three',
  'guard-region-quorum': 'losing any one region must leave the guard cluster a quorum',
  'decred-wallet-count': 'Decred solo voting needs at least three voting wallets',
  'decred-wallet-spread': 'Decred voting wallets sit in different regions and providers',
  'decred-full-node': 'each Decred voting wallet has its own full dcrd, never SPV',
  'decred-consistency': 'Decred voting wallets run the same version and vote the same way',
  'artifact-checksum': 'every downloaded artifact is pinned by sha256',
  'artifact-unpinned': 'artifacts name an exact release, never "latest"',
  'artifact-placeholder': 'an all-zero sha256 is a placeholder: hosts will refuse the download',
  'vigil-release':
    'vigil.agent is a Vigil release tarball (`npm run release`), named for its version, with its launcher as binary',
  'region-spread': 'with spread asked, no two hosts of one role share a region',
  'role-chain': 'each host role fits its chain kind',
  'duplicate-name': 'host and chain names are unique',
  'duplicate-chain-key':
    'one key is served by one chain entry: two entries for one chain id must not share a key',
  'provider-settings': 'providers that need account settings have them',
  'provider-local-mixed':
    'a fleet is either all `provider: local` (namespaces on this machine) or all cloud hosts',
  'monitor-missing': 'a fleet without a monitor host is flying blind',
  'vpn-size': 'the VPN /24 holds at most 253 hosts',
  'receiver-undefined': 'every receiver an Alertmanager route names is defined',
  'alerts-unrouted': 'alerts that page (severity=page) reach a receiver',
  'disk-size':
    "a host's disk holds its chain: the size's known disk, or a volume, or a root disk sized by Terraform",
  'watch-chain':
    'a monitoring.watch entry names a CometBFT chain of the topology and its validator address',
} as const;
export type LintCode = keyof typeof LINT_RULES;

const ROLES_BY_KIND: Record<Chain['kind'], readonly Role[]> = {
  cometbft: ['validator', 'sentry'],
  substrate: ['validator'],
  cardano: ['producer', 'relay'],
  decred: ['voting-wallet'],
};
const CHAINLESS_ROLES: readonly Role[] = ['guard-member', 'monitor'];

/** The PVF workers a `polkadot` validator needs beside it (polkadot/cli/src/cli.rs). */
export const POLKADOT_WORKERS = ['polkadot-prepare-worker', 'polkadot-execute-worker'] as const;

function binaryBaseName(a: Artifact): string {
  const path = a.binary ?? new URL(a.url).pathname;
  return path.split('/').pop() ?? '';
}

function missingWorkers(chain: Extract<Chain, { kind: 'substrate' }>): string[] {
  if (binaryBaseName(chain.binary) !== 'polkadot') return [];
  const have = new Set(chain.workers.map(binaryBaseName));
  return POLKADOT_WORKERS.filter((w) => !have.has(w));
}

/** Why an extra peer cannot be dialled on its chain, or undefined when it can. */
function peerProblem(
  kind: Chain['kind'],
  peer: { address: string; port: number; id?: string | undefined },
): string | undefined {
  if (kind === 'cometbft') {
    if (!peer.id || !/^[0-9a-f]{40}$/.test(peer.id))
      return `peer ${peer.address}:${peer.port} needs its CometBFT node id (40 lower-case hex digits, \`cometbft show-node-id\`)`;
  } else if (kind === 'substrate') {
    if (!peer.id) return `peer ${peer.address}:${peer.port} needs its libp2p peer id (12D3KooW…)`;
    try {
      ed25519FromPeerId(peer.id);
    } catch {
      return `peer ${peer.address}:${peer.port}: ${peer.id} is not an Ed25519 libp2p peer id`;
    }
  } else if (peer.id) {
    return `peer ${peer.address}:${peer.port}: a ${kind} peer is dialled by address alone; remove its id`;
  }
  return undefined;
}

function vigilReleaseFindings(agent: Artifact): LintFinding[] {
  const file = agent.url.split('/').pop() ?? '';
  const m = /^vigil-(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)-linux-(x64|arm64)\.tar\.gz$/.exec(file);
  if (!m)
    return [
      finding(
        'vigil-release',
        'vigil.agent.url',
        `${file} is not a Vigil release tarball (vigil-<version>-linux-<arch>.tar.gz): a bare binary has no Node runtime to run on`,
      ),
    ];
  const [, version, arch] = m;
  const out: LintFinding[] = [];
  const binary = releaseBinary({
    version: version!,
    platform: 'linux',
    arch: arch as 'x64' | 'arm64',
  });
  if (agent.binary !== binary)
    out.push(finding('vigil-release', 'vigil.agent.binary', `the release's launcher is ${binary}`));
  if (agent.version !== undefined && agent.version !== version)
    out.push(
      finding(
        'vigil-release',
        'vigil.agent.version',
        `${file} is version ${version}, not ${agent.version}`,
      ),
    );
  if (version !== vigilVersion())
    out.push(
      finding(
        'vigil-release',
        'vigil.agent.url',
        `hosts will run Vigil ${version} while this plan was rendered by Vigil ${vigilVersion()}`,
        'warning',
      ),
    );
  return out;
}

function finding(
  code: LintCode,
  path: string,
  message: string,
  severity: Severity = 'error',
): LintFinding {
  return { code, severity, message, path };
}

/**
 * True when every single-region loss leaves a strict majority of the members: that is the
 * exact condition for an etcd cluster to keep a quorum through the loss of any one region.
 * Returns the regions whose loss would break quorum.
 */
export function regionsBreakingQuorum(memberRegions: readonly string[]): string[] {
  const total = memberRegions.length;
  const quorum = Math.floor(total / 2) + 1;
  const perRegion = new Map<string, number>();
  for (const r of memberRegions) perRegion.set(r, (perRegion.get(r) ?? 0) + 1);
  return [...perRegion.entries()]
    .filter(([, n]) => total - n < quorum)
    .map(([r]) => r)
    .sort();
}

/**
 * The region a host's placement belongs to. Zones of one region share its failure domain
 * (power, network, control plane), so a zone counts as its region: GCP zones are
 * `<region>-<letter>` (europe-west3-a → europe-west3), AWS availability zones are
 * `<region><letter>` (eu-west-1a → eu-west-1). Other providers name regions or data
 * centres, taken as given.
 */
export function regionOfPlacement(provider: Provider, placement: string): string {
  if (provider === 'gcp') {
    const m = /^([a-z]+-[a-z]+\d+)-[a-z]$/.exec(placement);
    if (m) return m[1]!;
  }
  if (provider === 'aws') {
    const m = /^([a-z]{2}(?:-[a-z]+)+-\d+)[a-z]$/.exec(placement);
    if (m) return m[1]!;
  }
  return placement;
}

/** Region identity includes the provider: fra1 on two clouds is still one metro in practice,
 * but providers name regions differently, so we compare the provider and region pair. */
function regionOf(e: ExpandedHost): string {
  return `${e.host.provider}:${regionOfPlacement(e.host.provider, e.host.region)}`;
}

/** What makes two chain entries the same chain: the id a node joins. */
function chainIdentity(chain: Chain): string {
  switch (chain.kind) {
    case 'cometbft':
      return `cometbft:${chain.chainId}`;
    case 'substrate':
      return `substrate:${chain.chainSpec}`;
    case 'cardano':
    case 'decred':
      return `${chain.kind}:${chain.network}`;
  }
}

function artifactsOf(topology: Topology): Array<{ path: string; artifact: Artifact }> {
  const out: Array<{ path: string; artifact: Artifact }> = [
    { path: 'vigil.agent', artifact: topology.vigil.agent },
  ];
  if (topology.vigil.etcd) out.push({ path: 'vigil.etcd', artifact: topology.vigil.etcd });
  if (topology.monitoring.grafana)
    out.push({ path: 'monitoring.grafana', artifact: topology.monitoring.grafana });
  topology.chains.forEach((chain, i) => {
    if (chain.kind === 'decred') {
      out.push({ path: `chains[${i}].dcrd`, artifact: chain.dcrd });
      out.push({ path: `chains[${i}].dcrwallet`, artifact: chain.dcrwallet });
    } else {
      out.push({ path: `chains[${i}].binary`, artifact: chain.binary });
      if (chain.kind === 'cometbft')
        out.push({ path: `chains[${i}].genesis`, artifact: chain.genesis });
      if (chain.kind === 'substrate')
        chain.workers.forEach((artifact, w) =>
          out.push({ path: `chains[${i}].workers[${w}]`, artifact }),
        );
    }
  });
  return out;
}

export function lintTopology(topology: Topology): LintFinding[] {
  const out: LintFinding[] = [];
  const expanded = expandHosts(topology);
  const chainIndex = new Map(topology.chains.map((c, i) => [c.name, i]));

  // Names.
  const seenHosts = new Map<string, number>();
  for (const e of expanded) {
    const prior = seenHosts.get(e.name);
    if (prior !== undefined && prior !== e.index)
      out.push(
        finding('duplicate-name', `hosts[${e.index}].name`, `host name ${e.name} is used twice`),
      );
    seenHosts.set(e.name, e.index);
  }
  const seenChains = new Set<string>();
  topology.chains.forEach((c, i) => {
    if (seenChains.has(c.name))
      out.push(
        finding('duplicate-name', `chains[${i}].name`, `chain name ${c.name} is used twice`),
      );
    seenChains.add(c.name);
  });
  if (expanded.length > 253)
    out.push(
      finding('vpn-size', 'hosts', `${expanded.length} hosts do not fit in the VPN's /24 (253)`),
    );

  // Roles fit chains.
  topology.hosts.forEach((h, i) => {
    if (CHAINLESS_ROLES.includes(h.role)) {
      if (h.chain !== undefined)
        out.push(finding('role-chain', `hosts[${i}].chain`, `a ${h.role} serves no chain`));
      return;
    }
    if (h.chain === undefined) {
      out.push(finding('role-chain', `hosts[${i}].chain`, `a ${h.role} must name its chain`));
      return;
    }
    const ci = chainIndex.get(h.chain);
    if (ci === undefined) {
      out.push(finding('role-chain', `hosts[${i}].chain`, `no chain named ${h.chain}`));
      return;
    }
    const kind = topology.chains[ci]!.kind;
    if (!ROLES_BY_KIND[kind].includes(h.role))
      out.push(
        finding(
          'role-chain',
          `hosts[${i}].role`,
          `a ${kind} chain has no ${h.role} role (use ${ROLES_BY_KIND[kind].join(' or ')})`,
        ),
      );
  });

  // One active signer per key unless guarded. A guard needs a shared store: with SQLite each
  // host keeps its own watermark, so two active hosts could still sign conflicting messages.
  const sharedStore = topology.vigil.store === 'etcd';
  const activeByKey = new Map<string, ExpandedHost[]>();
  for (const e of expanded) {
    if ((e.host.role !== 'validator' && e.host.role !== 'producer') || !e.host.active) continue;
    if (!e.chain || (e.chain.guarded && sharedStore)) continue;
    const k = `${e.chain.name}/${signingKey(e.host)}`;
    activeByKey.set(k, [...(activeByKey.get(k) ?? []), e]);
  }
  for (const [key, hosts] of activeByKey) {
    if (hosts.length < 2) continue;
    const second = hosts[1]!;
    out.push(
      finding(
        'single-active-signer',
        `hosts[${second.index}]`,
        `key ${key} is active on ${hosts.map((h) => h.name).join(', ')}: mark all but one active: false, or guard the chain (guarded: true with vigil.store: etcd)`,
      ),
    );
  }

  // One key, one chain entry: two entries for one chain id are linted (and guarded) apart, so
  // a key shared between them could sign twice on the same chain.
  const entryByChainKey = new Map<string, ExpandedHost>();
  for (const e of expanded) {
    if (!e.chain || !SIGNING_ROLES.has(e.host.role)) continue;
    const k = `${chainIdentity(e.chain)}/${signingKey(e.host)}`;
    const prior = entryByChainKey.get(k);
    if (!prior) entryByChainKey.set(k, e);
    else if (prior.chain!.name !== e.chain.name)
      out.push(
        finding(
          'duplicate-chain-key',
          `hosts[${e.index}].${e.host.key !== undefined ? 'key' : 'chain'}`,
          `chain entries ${prior.chain!.name} and ${e.chain.name} are both ${chainIdentity(e.chain)} and serve key ${signingKey(e.host)} (on ${prior.name} and ${e.name}): use one chain entry, or give each validator its own key`,
        ),
      );
  }

  // Per chain.
  topology.chains.forEach((chain, ci) => {
    const members = expanded.filter((e) => e.host.chain === chain.name);
    const ofRole = (r: Role) => members.filter((e) => e.host.role === r);
    if (chain.kind === 'cardano') {
      const producers = ofRole('producer');
      const relays = ofRole('relay');
      if (producers.length > 0 && relays.length < 2)
        out.push(
          finding(
            'cardano-relay-count',
            `chains[${ci}]`,
            `${chain.name} has ${relays.length} relay(s); a producer needs at least 2`,
          ),
        );
      if (chain.guarded && producers.length > 0 && !cardanoNonProducingFlag(chain.binary.version))
        out.push(
          finding(
            'cardano-hot-standby',
            `chains[${ci}].binary.version`,
            `${chain.name}: cardano-node ${chain.binary.version ?? '(no version)'} cannot run a synced standby; pin 8.7.2 or later (binary.version) so the standby starts without forging and is promoted with SIGHUP`,
          ),
        );
      for (const p of new Set(producers.map((e) => e.index)))
        if (topology.hosts[p]!.peers.length > 0)
          out.push(
            finding(
              'cardano-producer-isolated',
              `hosts[${p}].peers`,
              'a block producer must talk only to its relays: remove its extra peers',
            ),
          );
    }
    for (const i of new Set(members.map((e) => e.index)))
      topology.hosts[i]!.peers.forEach((peer, pi) => {
        const problem = peerProblem(chain.kind, peer);
        if (problem)
          out.push(
            finding('peer-address', `hosts[${i}].peers[${pi}]`, `${chain.name}: ${problem}`),
          );
      });
    if (chain.kind === 'substrate' && ofRole('validator').length > 0) {
      const missing = missingWorkers(chain);
      if (missing.length > 0)
        out.push(
          finding(
            'substrate-workers',
            `chains[${ci}].workers`,
            `${chain.name} runs ${binaryBaseName(chain.binary)} as a validator without ${missing.join(' and ')}; add them from the same release`,
          ),
        );
    }
    if (chain.kind === 'cometbft') {
      const validators = ofRole('validator');
      const sentries = ofRole('sentry');
      for (const i of new Set(validators.map((e) => e.index)))
        if (topology.hosts[i]!.peers.length > 0)
          out.push(
            finding(
              'cometbft-validator-isolated',
              `hosts[${i}].peers`,
              'a validator behind sentries must dial only its sentries: move the extra peers to the sentries',
            ),
          );
      if (validators.length > 0 && sentries.length < 2)
        out.push(
          finding(
            'cometbft-sentry-count',
            `chains[${ci}]`,
            `${chain.name} has ${sentries.length} sentry(ies); a validator needs at least 2`,
          ),
        );
    }
    if (chain.kind === 'decred') {
      const wallets = ofRole('voting-wallet');
      if (wallets.length < 3)
        out.push(
          finding(
            'decred-wallet-count',
            `chains[${ci}]`,
            `${chain.name} has ${wallets.length} voting wallet(s); solo voting needs at least 3`,
          ),
        );
      const byRegion = new Map<string, ExpandedHost>();
      const byProvider = new Map<string, ExpandedHost>();
      for (const w of wallets) {
        const region = regionOfPlacement(w.host.provider, w.host.region);
        const r = byRegion.get(region);
        if (r)
          out.push(
            finding(
              'decred-wallet-spread',
              `hosts[${w.index}].region`,
              `voting wallets ${r.name} and ${w.name} share region ${region}`,
            ),
          );
        else byRegion.set(region, w);
        const p = byProvider.get(w.host.provider);
        if (p)
          out.push(
            finding(
              'decred-wallet-spread',
              `hosts[${w.index}].provider`,
              `voting wallets ${p.name} and ${w.name} share provider ${w.host.provider}`,
            ),
          );
        else byProvider.set(w.host.provider, w);
      }
      const baseVersion = chain.dcrwallet.version ?? chain.dcrd.version;
      const baseChoices = JSON.stringify(sortedRecord(chain.voteChoices));
      for (const i of new Set(wallets.map((w) => w.index))) {
        const d = topology.hosts[i]!.decred;
        if (d?.spv)
          out.push(
            finding(
              'decred-full-node',
              `hosts[${i}].decred.spv`,
              'a voting wallet must use its own full dcrd, not SPV',
            ),
          );
        if (d?.version !== undefined && d.version !== baseVersion)
          out.push(
            finding(
              'decred-consistency',
              `hosts[${i}].decred.version`,
              `version ${d.version} differs from the chain's ${baseVersion ?? '(unset)'}`,
            ),
          );
        if (
          d?.voteChoices !== undefined &&
          JSON.stringify(sortedRecord(d.voteChoices)) !== baseChoices
        )
          out.push(
            finding(
              'decred-consistency',
              `hosts[${i}].decred.voteChoices`,
              'vote choices differ from the chain-wide choices',
            ),
          );
      }
    }
  });

  // Guard cluster.
  const needsGuard =
    topology.vigil.store === 'etcd' && topology.chains.some((c) => c.guarded === true);
  const guards = expanded.filter((e) => e.host.role === 'guard-member');
  if (needsGuard || guards.length > 0) {
    if (guards.length < 3 || guards.length % 2 === 0)
      out.push(
        finding(
          'guard-member-count',
          'hosts',
          `the guard cluster has ${guards.length} member(s); it needs an odd number, at least 3`,
        ),
      );
    if (guards.length > 0) {
      const breaking = regionsBreakingQuorum(guards.map(regionOf));
      for (const region of breaking)
        out.push(
          finding(
            'guard-region-quorum',
            `hosts[${guards.find((g) => regionOf(g) === region)!.index}].region`,
            `losing region ${region} leaves the guard cluster without a quorum`,
          ),
        );
    }
  }

  // Artifacts.
  for (const { path, artifact } of artifactsOf(topology)) {
    if (artifact.sha256 === undefined)
      out.push(finding('artifact-checksum', `${path}.sha256`, `${artifact.url} has no sha256`));
    if (artifact.sha256 !== undefined && /^0{64}$/.test(artifact.sha256))
      out.push(
        finding(
          'artifact-placeholder',
          `${path}.sha256`,
          `placeholder checksum for ${artifact.url}: copy the release's real sha256 before apply`,
          'warning',
        ),
      );
    if (/latest/i.test(artifact.url) || artifact.version?.toLowerCase() === 'latest')
      out.push(
        finding('artifact-unpinned', path, `${artifact.url} is not pinned to an exact release`),
      );
  }

  // Vigil itself: only a release tarball carries the Node runtime and dependencies it needs.
  out.push(...vigilReleaseFindings(topology.vigil.agent));

  // Spread.
  if (topology.spread) {
    const seen = new Map<string, ExpandedHost>();
    for (const e of expanded) {
      const k = `${e.host.role}|${e.host.chain ?? ''}|${regionOf(e)}`;
      const prior = seen.get(k);
      if (prior)
        out.push(
          finding(
            'region-spread',
            `hosts[${e.index}].region`,
            `${prior.name} and ${e.name} are both ${e.host.role}s in ${regionOfPlacement(e.host.provider, e.host.region)}`,
          ),
        );
      else seen.set(k, e);
    }
  }

  // Provider settings.
  topology.hosts.forEach((h, i) => {
    if (h.provider === 'gcp' && !topology.providers.gcp)
      out.push(
        finding(
          'provider-settings',
          `hosts[${i}].provider`,
          'gcp hosts need providers.gcp.project',
        ),
      );
    if (h.provider === 'ovh') {
      if (!topology.providers.ovh)
        out.push(
          finding(
            'provider-settings',
            `hosts[${i}].provider`,
            'ovh hosts need providers.ovh.serviceName',
          ),
        );
      if (h.image === undefined)
        out.push(finding('provider-settings', `hosts[${i}].image`, 'ovh hosts need an image id'));
    }
  });

  // Disks: every host's disk holds what its role and chain need (src/topology/disks.ts).
  for (const i of topology.hosts.keys()) {
    const h = topology.hosts[i]!;
    if (h.provider === 'local') continue;
    const chain =
      h.chain === undefined ? undefined : topology.chains.find((c) => c.name === h.chain);
    const d = diskPlan(h, chain);
    const recipe = recipeDataGB(h.role, chain);
    if (h.disk !== undefined && h.disk < recipe)
      out.push(
        finding(
          'disk-size',
          `hosts[${i}].disk`,
          `${h.disk} GB is below the ${recipe} GB the ${chain ? `${chain.name} recipe` : h.role} needs: the node may fill its disk`,
          'warning',
        ),
      );
    if (d.rootGB !== undefined || d.volumeGB !== undefined) {
      if (d.volumeGB !== undefined && d.planDiskGB === undefined)
        out.push(
          finding(
            'disk-size',
            `hosts[${i}].size`,
            `the disk of ${h.provider} size ${h.size} is not in Vigil's table: a ${d.volumeGB} GB volume is attached for ${chain!.name}'s data (billed apart); pick a listed size or set disk:`,
            'warning',
          ),
        );
      else if (d.volumeGB !== undefined && d.planDiskChecked === false && d.planDiskGB! >= d.needGB)
        out.push(
          finding(
            'disk-size',
            `hosts[${i}].size`,
            `Vigil's figure for ${h.provider} size ${h.size} (${d.planDiskGB} GB) was not checked against a source, so a ${d.volumeGB} GB volume is attached for ${chain!.name}'s data (billed apart) rather than trusting it`,
            'warning',
          ),
        );
      continue;
    }
    if (d.planDiskGB === undefined)
      out.push(
        finding(
          'disk-size',
          `hosts[${i}].size`,
          `the disk of ${h.provider} size ${h.size} is not in Vigil's table; make sure it holds ${d.needGB} GB`,
          'warning',
        ),
      );
    else if (d.planDiskGB < d.needGB)
      out.push(
        finding(
          'disk-size',
          `hosts[${i}].size`,
          `${h.provider} size ${h.size} has a ${d.planDiskGB} GB disk` +
            (d.planDiskChecked === false ? " (Vigil's figure, not checked against a source)" : '') +
            `; ${h.name} needs ${d.needGB} GB: pick a larger size` +
            (chain && !VOLUME_PROVIDERS.has(h.provider)
              ? ` (no volume can be attached to ${h.provider} hosts by Terraform)`
              : ''),
        ),
      );
  }

  // A local host is a namespace on the operator's machine: no cloud host can reach it.
  const localHosts = topology.hosts.flatMap((h, i) => (h.provider === 'local' ? [i] : []));
  if (localHosts.length > 0 && localHosts.length < topology.hosts.length)
    out.push(
      finding(
        'provider-local-mixed',
        `hosts[${localHosts[0]}].provider`,
        `${localHosts.length} of ${topology.hosts.length} hosts are local: run the whole fleet locally or none of it`,
      ),
    );

  if (!expanded.some((e) => e.host.role === 'monitor'))
    out.push(
      finding('monitor-missing', 'hosts', 'no monitor host: nothing scrapes metrics', 'warning'),
    );
  else out.push(...lintMonitoring(topology));

  return out;
}

function sortedRecord(r: Record<string, string>): Array<[string, string]> {
  return Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function hasErrors(findings: readonly LintFinding[]): boolean {
  return findings.some((f) => f.severity === 'error');
}

export function formatFinding(file: string, f: LintFinding): string {
  return `${file}: ${f.severity} [${f.code}] ${f.path}: ${f.message}`;
}
