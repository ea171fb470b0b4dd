/**
 * A CometBFT fleet on `provider: local` for tests and benches that need their own small topology
 * (the examples under examples/local cover the common shapes). Only what varies between callers is
 * a parameter; the rest (operator key, placeholder artifacts, Gaia's published genesis, the app
 * section the lint requires) is what every local CometBFT fleet carries.
 */
export interface LocalCosmosHost {
  readonly name: string;
  readonly role: 'validator' | 'sentry' | 'guard-member';
  readonly region: string;
}

export interface LocalCosmosTopology {
  readonly name: string;
  readonly vpnCidr: string;
  readonly store: 'etcd' | 'sqlite';
  readonly chainId: string;
  readonly hosts: readonly LocalCosmosHost[];
}

const PLACEHOLDER_SHA256 = `'${'0'.repeat(64)}'`;

export function localCosmosTopology(t: LocalCosmosTopology): string {
  const hosts = t.hosts.map((h) => {
    const chain = h.role === 'guard-member' ? '' : ' chain: hub,';
    return `  - { name: ${h.name}, role: ${h.role},${chain} provider: local, region: ${h.region}, size: netns }`;
  });
  return `version: 1
name: ${t.name}
ssh:
  keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleOperatorKeyReplaceMe0000000000000 ops@laptop
vpn:
  cidr: ${t.vpnCidr}
vigil:
  agent:
    url: https://releases.example.org/vigil/v0.1.0/vigil-0.1.0-linux-x64.tar.gz
    sha256: ${PLACEHOLDER_SHA256}
    version: 0.1.0
    binary: vigil-0.1.0-linux-x64/bin/vigil
  store: ${t.store}
chains:
  - name: hub
    kind: cometbft
    chainId: ${t.chainId}
    binary:
      url: https://github.com/cosmos/gaia/releases/download/v21.0.1/gaiad-v21.0.1-linux-amd64
      sha256: ${PLACEHOLDER_SHA256}
      version: v21.0.1
      binary: gaiad
    genesis:
      url: https://raw.githubusercontent.com/cosmos/mainnet/master/genesis/genesis.cosmoshub-4.json.gz
      sha256: 7fe946e6bb3c378da546767f4d078585c38f256c8ec17888d71aeee3b7edd5c7
    app:
      kind: cosmos-sdk
      minimumGasPrices: 0.005uatom
hosts:
${hosts.join('\n')}
`;
}
