/** Small topology builders shared by the topology and render tests. */
import { TopologySchema, type Topology, type TopologyInput } from '../../src/topology/schema.js';
import { vigilVersion } from '../../src/package-root.js';
import { releaseBinary } from '../../src/release/artifact.js';

export const SHA = 'a'.repeat(64);
export const artifact = (name: string) => ({
  url: `https://example.org/${name}-1.0.0.tar.gz`,
  sha256: SHA,
  version: '1.0.0',
});

/** A CometBFT chain's Cosmos SDK application, with the one setting it cannot start without. */
export const cosmosApp = () => ({ kind: 'cosmos-sdk' as const, minimumGasPrices: '0.005uatom' });

/** A CometBFT chain's genesis, as a topology pins it. */
export const genesis = () => ({ url: 'https://example.org/genesis.json.gz', sha256: SHA });

/** Vigil as a fleet pins it: this version's release tarball and its launcher. */
export const vigilRelease = () => {
  const version = vigilVersion();
  return {
    url: `https://example.org/vigil-${version}-linux-x64.tar.gz`,
    sha256: SHA,
    version,
    binary: releaseBinary({ version, platform: 'linux', arch: 'x64' }),
  };
};

export function baseInput(): TopologyInput {
  return {
    version: 1,
    name: 'fleet',
    spread: true,
    ssh: { keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake test@host'] },
    vigil: { agent: vigilRelease(), store: 'sqlite' },
    chains: [],
    hosts: [
      { name: 'monitor', role: 'monitor', provider: 'hetzner', region: 'nbg1', size: 'cx22' },
    ],
    // Every alert reaches someone, so only the rule under test fires.
    monitoring: {
      alertmanager: {
        receivers: [{ name: 'ops', webhook: { url: 'https://hooks.example.org/vigil' } }],
        route: { receiver: 'ops' },
      },
    },
  };
}

export function topology(input: TopologyInput): Topology {
  return TopologySchema.parse(input);
}
