/** A registry node's config file (src/registry/config.ts): defaults, paths, the checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseYaml } from '../../src/config/yaml-file.js';
import {
  RegistryConfigSchema,
  registryValidatorSet,
  validatorAddresses,
  viewPathOf,
} from '../../src/registry/config.js';
import { peerIdFromEd25519 } from '../../src/registry/peer-id.js';
import { keyOf } from './fixtures.js';

const id = (tag: number) => peerIdFromEd25519(keyOf(tag).publicKey);
const V = [100, 101, 102].map(id);

function parse(text: string) {
  return parseYaml('node.yaml', text, RegistryConfigSchema);
}

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems.map((p) => `${p.line ?? '-'}:${p.path}: ${p.message}`);
  }
  assert.fail('the config was accepted');
}

const members = V.map((v) => `    - peerId: ${v}`).join('\n');

describe('registry config', () => {
  it('a peer takes the defaults: listen on loopback, open admission, view in dataDir', () => {
    const c = parse(
      [
        'role: peer',
        'identity: { keyFile: ./k }',
        'dataDir: /var/lib/reg',
        `bootstrap: [/ip4/127.0.0.1/tcp/1/p2p/${V[1]}]`,
        'validators:',
        '  members:',
        members,
        '',
      ].join('\n'),
    );
    assert.deepEqual(c.listen, ['/ip4/127.0.0.1/tcp/0']);
    assert.deepEqual(c.admission, { mode: 'open' });
    assert.deepEqual(c.rateLimit, { submissions: 5, windowSeconds: 10 });
    assert.equal(c.record.lifetimeHours, 168);
    assert.equal(viewPathOf(c), '/var/lib/reg/view.db');
    assert.equal(registryValidatorSet(c).quorum, 2, 'a majority of three');
    // Where submit goes: each validator's own addresses, then the bootstrap entries naming it.
    assert.deepEqual(validatorAddresses(c).get(V[1]!), [`/ip4/127.0.0.1/tcp/1/p2p/${V[1]}`]);
    assert.deepEqual(validatorAddresses(c).get(V[0]!), []);
  });

  it('a validator has a store; a peer has none; the quorum fits the set', () => {
    const base = [
      'identity: { keyFile: ./k }',
      'dataDir: ./d',
      'validators:',
      '  members:',
      members,
    ];
    assert.deepEqual(problems(['role: validator', ...base, ''].join('\n')), [
      '1:store: a validator needs `store` (engine: etcd, or sqlite for a one-host setup)',
    ]);
    assert.deepEqual(
      problems(['role: peer', ...base, 'store: { engine: sqlite, path: ./r.db }', ''].join('\n')),
      ['9:store: a peer has no store: only validators write the registry'],
    );
    const p = problems(
      [
        'role: validator',
        ...base,
        '  quorum: 4',
        'store: { engine: etcd, endpoints: [] }',
        '',
      ].join('\n'),
    );
    assert.ok(
      p.some((x) => /^9:validators\.quorum: the quorum \(4\) is larger/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /^10:store\.endpoints: /.test(x)),
      p.join('\n'),
    );
  });

  it('refuses a bad peer id, a duplicate validator, a bootstrap entry without /p2p/, a bad multiaddr', () => {
    const p = problems(
      [
        'role: peer',
        'identity: { keyFile: ./k }',
        'dataDir: ./d',
        'listen: [/ip4/300.0.0.1/tcp/1]',
        'bootstrap: [/ip4/127.0.0.1/tcp/1]',
        'validators:',
        '  members:',
        `    - peerId: ${V[0]}`,
        `    - peerId: ${V[0]}`,
        '    - peerId: QmNotAnEd25519PeerId',
        'admission: { mode: allowList, peers: [] }',
        '',
      ].join('\n'),
    );
    const has = (re: RegExp) =>
      assert.ok(
        p.some((x) => re.test(x)),
        `${re}\n${p.join('\n')}`,
      );
    has(/^4:listen\[0\]: .*bad value for \/ip4/);
    has(/^5:bootstrap\[0\]: a bootstrap address ends with \/p2p\/<peer id>/);
    has(/^9:validators\.members\[1\]\.peerId: validator 12D3KooW\w+ is listed twice/);
    has(/^10:validators\.members\[2\]\.peerId: .*not .*peer id/);
    has(/^11:admission\.peers: /);
  });

  it('an etcd: section (for vigil etcd) is allowed and checked, unknown keys are not', () => {
    const p = problems(
      [
        'role: peer',
        'identity: { keyFile: ./k }',
        'dataDir: ./d',
        'validators: { members: [{ peerId: ' + V[0] + ' }] }',
        'etcd: { name: a, dataDir: ./e, listenClientUrls: [x], listenPeerUrls: [http://127.0.0.1:2380], initialCluster: { a: http://127.0.0.1:2380 } }',
        'extra: 1',
        '',
      ].join('\n'),
    );
    assert.ok(
      p.some((x) => /^5:etcd\.listenClientUrls\[0\]: expected http/.test(x)),
      p.join('\n'),
    );
    assert.ok(
      p.some((x) => /Unrecognized key: "extra"/.test(x)),
      p.join('\n'),
    );
  });
});
