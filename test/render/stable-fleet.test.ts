/**
 * Issue 12, "Stable machines" and "Secrets never in user data": a topology change replaces no
 * machine it does not concern, and no secret reaches user data or Terraform (state and the
 * metadata service keep whatever Terraform is given).
 *
 * For every example: plan it, then add a host and remove another (with the same state
 * directory, as an operator would), plan again, and compare every remaining host's Terraform
 * resources on the arguments that replace (or restart) a machine, as recorded per provider in
 * terraform-replacing-attributes.json (read from each provider's source at the release the
 * pin allows), with `file(...)` user data resolved to its content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { planFleet } from '../../src/render/fleet.js';
import { ManifestSchema } from '../../src/render/bundle.js';
import { NODE_UID, METADATA_V4 } from '../../src/render/network.js';
import {
  AWS_UBUNTU_IMAGE,
  CANONICAL_AWS_OWNER,
  IGNORED_USER_DATA,
  PROVIDER_SOURCES,
  tfName,
} from '../../src/render/terraform.js';
import { AUTHORIZED_KEYS_DIR, SSHD_CONFIG_PATH } from '../../src/render/ssh.js';
import { EXAMPLES_DIR, exampleNames, removeDir, tempDir } from './helpers.js';

type Effect = 'replace' | 'replace-if-count-changes' | 'replace-if-set-or-unset' | 'restart';
const EFFECTS: readonly Effect[] = [
  'replace',
  'replace-if-count-changes',
  'replace-if-set-or-unset',
  'restart',
];
interface Replacing {
  resources: Record<
    string,
    {
      source: { repo: string; ref: string; commit: string; files: string[]; note?: string };
      read: string;
      attributes: Record<string, Effect>;
    }
  >;
}
/** The main record, plus the disk resources' (volumes, root disk sizes) kept in a file of their own. */
const REPLACING = ((): Replacing => {
  const main = JSON.parse(
    readFileSync('test/render/terraform-replacing-attributes.json', 'utf8'),
  ) as Replacing;
  const disks = JSON.parse(
    readFileSync('test/render/terraform-replacing-attributes-disks.json', 'utf8'),
  ) as Replacing;
  for (const [type, rules] of Object.entries(disks.resources)) {
    const base = main.resources[type];
    main.resources[type] = base
      ? { ...base, attributes: { ...base.attributes, ...rules.attributes } }
      : rules;
  }
  return main;
})();

/** The chain data volumes and their attachments: never replaced by another host's change. */
const VOLUME_TYPES = new Set([
  'hcloud_volume',
  'hcloud_volume_attachment',
  'digitalocean_volume',
  'digitalocean_volume_attachment',
  'vultr_block_storage',
  'linode_volume',
]);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type TfDoc = {
  resource: Record<string, Record<string, Record<string, Json>>>;
  data?: Record<string, Record<string, Record<string, Json>>>;
};

/** Per example, the host to remove (never a guard). A new host of the same role takes its
 * provider and region (the spread rules refuse two of a role in one region). */
const REMOVE: Record<string, string> = {
  'cardano-pool': 'relay-linode',
  'cosmos-sentries': 'sentry-linode',
  'decred-solo': 'wallet-us',
  'polkadot-guarded': 'validator-b',
};

/** Values at a dotted path, through nested blocks (objects or lists of them). */
function valuesAt(body: Json, path: string[]): Json[] {
  if (path.length === 0) return [body];
  if (Array.isArray(body)) return body.flatMap((b) => valuesAt(b, path));
  if (body === null || typeof body !== 'object') return [];
  const next = body[path[0]!];
  return next === undefined ? [] : valuesAt(next, path.slice(1));
}

/** The number of elements of a list block (a ForceNew list is replaced when it changes). */
const count = (v: Json): number => (Array.isArray(v) ? v.length : 1);

/** `${file("${path.module}/../hosts/x/cloud-init.yaml")}` → the file's content, so a changed
 * file shows as a changed argument (Terraform hashes the content, not the expression). */
function resolveFiles(value: Json, files: Map<string, string>): Json {
  return JSON.parse(
    JSON.stringify(value).replace(
      /file\(\\"\$\{path\.module\}\/\.\.\/([^"\\]+)\\"\)/g,
      (_, rel) => {
        const content = files.get(rel as string);
        assert.ok(content !== undefined, `${rel as string} is referenced but not rendered`);
        return `content:${Buffer.from(content).toString('base64')}`;
      },
    ),
  ) as Json;
}

/** The host a resource belongs to: its name is the host's Terraform name or starts with it. */
function ownerOf(name: string, hosts: string[]): string | undefined {
  return hosts
    .map(tfName)
    .sort((a, b) => b.length - a.length)
    .find((h) => name === h || name.startsWith(`${h}_`));
}

function planWith(topology: unknown, dir: string, state: string) {
  const file = join(dir, 'fleet.yaml');
  writeFileSync(file, stringify(topology));
  const r = planFleet(file, { state, write: false });
  assert.ok(r.files && r.plan, JSON.stringify(r.findings.filter((f) => f.severity === 'error')));
  return r;
}

test('every replacing-attribute entry names the provider source read: repository, tag, commit, files', () => {
  const pinned = new Set(Object.values(PROVIDER_SOURCES).map((p) => p.source.toLowerCase()));
  for (const [type, entry] of Object.entries(REPLACING.resources)) {
    const { repo, ref, commit, files } = entry.source;
    assert.match(repo, /^[\w.-]+\/terraform-provider-[\w-]+$/, type);
    // The repository of the provider Vigil pins for this type.
    assert.ok(
      pinned.has(repo.replace('/terraform-provider-', '/').toLowerCase()),
      `${type}: ${repo} is not a pinned provider`,
    );
    assert.match(commit, /^[0-9a-f]{40}$/, `${type}: a full commit`);
    assert.match(ref, /^v\d+\.\d+\.\d+$|^code index$/, type);
    if (ref === 'code index') assert.ok(entry.source.note, `${type}: say why no tag`);
    assert.ok(files.length > 0 && files.every((f) => f.endsWith('.go')), type);
    assert.ok(entry.read.length > 10, `${type}: say what was read`);
    for (const [attr, effect] of Object.entries(entry.attributes))
      assert.ok(EFFECTS.includes(effect), `${type}.${attr}: ${effect}`);
  }
});

for (const name of exampleNames()) {
  test(`${name}: adding and removing a host replaces no other machine`, () => {
    const removed = REMOVE[name];
    assert.ok(removed, `${name}: name a host to remove in REMOVE`);
    const added = `${removed}-new`;
    const work = tempDir(`stable-${name}`);
    try {
      const original = parse(readFileSync(join(EXAMPLES_DIR, `${name}.yaml`), 'utf8')) as {
        hosts: Array<{ name: string; role: string }>;
      };
      const before = planWith(original, work, join(work, 'state'));
      const changed = structuredClone(original);
      const gone = changed.hosts.find((h) => h.name === removed)!;
      assert.notEqual(gone.role, 'guard-member', `${name}: the removed host must not be a guard`);
      changed.hosts.push({ ...structuredClone(gone), name: added });
      changed.hosts = changed.hosts.filter((h) => h.name !== removed);
      const after = planWith(changed, work, join(work, 'state'));

      const kept = before.plan!.hosts.map((h) => h.name).filter((h) => h !== removed);
      const allHosts = [...before.plan!.hosts, ...after.plan!.hosts].map((h) => h.name);
      // 1. Every kept host's user data is byte-identical.
      for (const h of kept)
        assert.equal(
          after.files!.get(`hosts/${h}/cloud-init.yaml`),
          before.files!.get(`hosts/${h}/cloud-init.yaml`),
          `${name}: ${h}'s user data changed`,
        );
      // ...and its VPN address and WireGuard key stayed.
      for (const h of kept) {
        const a = before.plan!.hosts.find((x) => x.name === h)!;
        const b = after.plan!.hosts.find((x) => x.name === h)!;
        assert.equal(b.vpnAddress, a.vpnAddress, `${name}: ${h} moved on the VPN`);
        assert.equal(b.wireguard.publicKey, a.wireguard.publicKey);
      }

      // 2. No kept host's resource changes in a replacing argument.
      const tfBefore = JSON.parse(before.files!.get('terraform/main.tf.json')!) as TfDoc;
      const tfAfter = JSON.parse(after.files!.get('terraform/main.tf.json')!) as TfDoc;
      let compared = 0;
      let volumes = 0;
      for (const [type, byName] of Object.entries(tfBefore.resource)) {
        const rules = REPLACING.resources[type];
        assert.ok(
          rules,
          `${type}: record its replacing arguments in terraform-replacing-attributes.json`,
        );
        for (const [resName, body] of Object.entries(byName)) {
          const owner = ownerOf(resName, allHosts);
          if (owner === tfName(removed)) continue;
          const other = tfAfter.resource[type]?.[resName];
          assert.ok(other, `${name}: ${type}.${resName} disappeared`);
          if (VOLUME_TYPES.has(type)) {
            // A volume is not even resized by another host's change.
            assert.deepEqual(other, body, `${name}: ${type}.${resName} changed`);
            volumes++;
          }
          for (const [attr, effect] of Object.entries(rules.attributes)) {
            const path = attr.split('.');
            const [was, now] = [
              resolveFiles(valuesAt(body, path), before.files!),
              resolveFiles(valuesAt(other, path), after.files!),
            ] as [Json[], Json[]];
            const why = `${name}: ${type}.${resName}.${attr} changed (${effect}; ${rules.source.repo}@${rules.source.ref} ${rules.source.files[0]!})`;
            if (effect === 'replace-if-count-changes')
              assert.deepEqual(now.map(count), was.map(count), why);
            else if (effect === 'replace-if-set-or-unset')
              assert.equal(now.length, was.length, why);
            else assert.deepEqual(now, was, why);
            compared++;
          }
        }
      }
      assert.ok(compared > 0);
      // Every chain host the example puts on a too-small fixed disk has its volume compared.
      const expectedVolumes = before
        .plan!.hosts.filter((h) => h.name !== removed && h.disk.volumeGB !== undefined)
        .map((h) => (h.provider === 'hetzner' || h.provider === 'digitalocean' ? 2 : 1))
        .reduce((a, b) => a + b, 0);
      assert.equal(volumes, expectedVolumes, `${name}: volumes compared`);
      // A data source a kept instance reads (an image, a flavor list) must not change either.
      assert.deepEqual(
        Object.keys(tfAfter.data ?? {}).filter((k) => !(k in (tfBefore.data ?? {}))),
        [],
      );
      for (const [type, byName] of Object.entries(tfBefore.data ?? {}))
        for (const [dName, body] of Object.entries(byName))
          if (tfAfter.data?.[type]?.[dName])
            assert.deepEqual(tfAfter.data[type][dName], body, `${type}.${dName}`);

      // 3. The bundles do change: the new peer reaches the others by `vigil apply`.
      const peersOf = (files: Map<string, string>, h: string) =>
        ManifestSchema.parse(
          JSON.parse(files.get(`hosts/${h}/bundle/manifest.json`)!),
        ).wireguard.peers.map((p) => p.host);
      assert.ok(peersOf(after.files!, kept[0]!).includes(added));
      assert.ok(!peersOf(after.files!, kept[0]!).includes(removed));
    } finally {
      removeDir(work);
    }
  });
}

for (const name of exampleNames()) {
  test(`${name}: new SSH keys, port and sources replace no machine and reach every bundle`, () => {
    const work = tempDir(`ssh-${name}`);
    try {
      const original = parse(readFileSync(join(EXAMPLES_DIR, `${name}.yaml`), 'utf8')) as {
        ssh: { user?: string; port?: number; keys: string[]; allowFrom?: string[] };
      };
      const state = join(work, 'state');
      const before = planWith(original, work, state);
      const changed = structuredClone(original);
      const oldPort = before.topology.ssh.port;
      const newPort = oldPort === 22 ? 2200 : oldPort + 1;
      const newKey =
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewOperatorKeyForTheRotationTest000000 new@laptop';
      changed.ssh = {
        ...changed.ssh,
        port: newPort,
        keys: [newKey],
        allowFrom: ['198.51.100.0/24'],
      };
      const after = planWith(changed, work, state);

      // 1. The user data does change, and no machine changes in a replacing attribute that
      //    Terraform is not told to ignore; the ignored ones include the user data.
      const tfBefore = JSON.parse(before.files!.get('terraform/main.tf.json')!) as TfDoc;
      const tfAfter = JSON.parse(after.files!.get('terraform/main.tf.json')!) as TfDoc;
      let machines = 0;
      for (const [type, ignored] of Object.entries(IGNORED_USER_DATA))
        for (const [resName, body] of Object.entries(tfBefore.resource[type] ?? {})) {
          const other = tfAfter.resource[type]![resName]!;
          const lifecycle = other.lifecycle as { ignore_changes: string[] };
          assert.deepEqual(lifecycle.ignore_changes, [...ignored]);
          for (const [attr, effect] of Object.entries(REPLACING.resources[type]!.attributes)) {
            const top = attr.split('.')[0]!;
            if (ignored.some((i) => i === top || i.startsWith(`${top}[`))) continue;
            const path = attr.split('.');
            assert.deepEqual(
              resolveFiles(valuesAt(other, path), after.files!),
              resolveFiles(valuesAt(body, path), before.files!),
              `${name}: ${type}.${resName}.${attr} changed (${effect})`,
            );
          }
          machines++;
        }
      assert.equal(machines, before.plan!.hosts.length, `${name}: every machine compared`);
      for (const h of before.plan!.hosts)
        assert.notEqual(
          after.files!.get(`hosts/${h.name}/cloud-init.yaml`),
          before.files!.get(`hosts/${h.name}/cloud-init.yaml`),
          `${name}: ${h.name}'s user data should carry the new seed (and be ignored)`,
        );

      // 2. Every bundle carries the change: the keys file holds exactly the new key, sshd
      //    listens on the new port and, until a push is recorded, the old one; the host
      //    firewall admits the new sources on both.
      const user = after.topology.ssh.user;
      for (const h of after.plan!.hosts) {
        const m = ManifestSchema.parse(
          JSON.parse(after.files!.get(`hosts/${h.name}/bundle/manifest.json`)!),
        );
        const file = (p: string) =>
          after.files!.get(`hosts/${h.name}/${m.files.find((f) => f.path === p)!.source}`)!;
        assert.equal(file(`${AUTHORIZED_KEYS_DIR}/${user}`), `${newKey}\n`);
        const sshd = file(SSHD_CONFIG_PATH);
        assert.match(sshd, new RegExp(`^Port ${newPort}\nPort ${oldPort}\n`, 'm'));
        assert.match(sshd, new RegExp(`^AuthorizedKeysFile ${AUTHORIZED_KEYS_DIR}/%u$`, 'm'));
        assert.deepEqual(m.ssh.ports, [newPort, oldPort]);
        const nft = file('/etc/nftables.conf');
        for (const p of [newPort, oldPort])
          assert.match(nft, new RegExp(`198\\.51\\.100\\.0/24.*tcp dport ${p} accept`));
        assert.ok(
          !nft.includes(original.ssh.allowFrom?.[0] ?? '0.0.0.0/0 '),
          `${h.name}: old sources`,
        );
      }
    } finally {
      removeDir(work);
    }
  });
}

/** Every secret the state directory holds, by file. */
function stateSecrets(dir: string): Array<{ file: string; value: string }> {
  const out: Array<{ file: string; value: string }> = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(join(d, e.name), r);
      else {
        const text = readFileSync(join(d, e.name), 'utf8');
        if (r.startsWith('wireguard/'))
          out.push({ file: r, value: (JSON.parse(text) as { privateKey: string }).privateKey });
        else if (r.startsWith('cometbft/'))
          out.push({
            file: r,
            value: (JSON.parse(text) as { priv_key: { value: string } }).priv_key.value,
          });
        else if (r.startsWith('substrate/') || r.startsWith('secrets/'))
          out.push({ file: r, value: text.trim() });
        // Not secret: the SSH ports each host listens on (src/render/ssh-ports.ts).
        else if (r === 'ssh-ports.json') continue;
        else assert.ok(r.startsWith('vpn/'), `${r}: a new kind of state file; classify it here`);
      }
    }
  };
  walk(dir, '');
  return out;
}

for (const name of exampleNames()) {
  test(`${name}: no secret from the state directory in user data or Terraform`, () => {
    const work = tempDir(`secrets-${name}`);
    try {
      const state = join(work, 'state');
      const r = planFleet(join(EXAMPLES_DIR, `${name}.yaml`), { state, write: false });
      const secrets = stateSecrets(state);
      assert.ok(secrets.length >= r.plan!.hosts.length, `${name}: every host has a WireGuard key`);
      const exposed = [...r.files!.entries()].filter(
        ([path]) => path.endsWith('/cloud-init.yaml') || path.startsWith('terraform/'),
      );
      for (const s of secrets) {
        assert.ok(s.value.length >= 16, s.file);
        for (const [path, content] of exposed)
          assert.ok(!content.includes(s.value), `${name}: ${s.file} is in ${path}`);
      }
      // Where the bundle does carry them: files closed to every other user.
      for (const h of r.plan!.hosts) {
        const m = ManifestSchema.parse(
          JSON.parse(r.files!.get(`hosts/${h.name}/bundle/manifest.json`)!),
        );
        for (const f of m.files) {
          const content = r.files!.get(`hosts/${h.name}/${f.source}`)!;
          const held = secrets.filter((s) => content.includes(s.value));
          if (held.length === 0) continue;
          const mode = Number.parseInt(f.mode, 8);
          assert.equal(mode & 0o007, 0, `${h.name}: ${f.path} ${f.mode} holds ${held[0]!.file}`);
          if (held.some((s) => !s.file.startsWith('secrets/etcd-cluster-token')))
            assert.equal(mode & 0o077, 0, `${h.name}: ${f.path} ${f.mode} holds a private key`);
        }
      }
    } finally {
      removeDir(work);
    }
  });
}

test('AWS hosts boot one pinned Ubuntu build, never the most recent', () => {
  const work = tempDir('ami');
  try {
    const r = planFleet(join(EXAMPLES_DIR, 'cardano-pool.yaml'), {
      state: join(work, 'state'),
      write: false,
    });
    const tf = JSON.parse(r.files!.get('terraform/main.tf.json')!) as TfDoc;
    const amis = Object.values(tf.data?.aws_ami ?? {});
    assert.ok(amis.length > 0, 'the example has an AWS host');
    for (const ami of amis) {
      assert.equal(ami.most_recent, undefined);
      // A pinned build outlives its deprecation date: the lookup must still find it.
      assert.equal(ami.include_deprecated, true);
      assert.deepEqual(ami.owners, [CANONICAL_AWS_OWNER]);
      const names = (ami.filter as Array<{ name: string; values: string[] }>).find(
        (f) => f.name === 'name',
      )!.values;
      assert.deepEqual(names, [AWS_UBUNTU_IMAGE]);
      assert.doesNotMatch(AWS_UBUNTU_IMAGE, /[*?]/);
    }
  } finally {
    removeDir(work);
  }
});

test('user data is only the bootstrap: operator, sshd, an SSH-only firewall before packages', () => {
  const work = tempDir('bootstrap');
  try {
    for (const name of exampleNames()) {
      const r = planFleet(join(EXAMPLES_DIR, `${name}.yaml`), {
        state: join(work, name),
        write: false,
      });
      for (const h of r.plan!.hosts) {
        const text = r.files!.get(`hosts/${h.name}/cloud-init.yaml`)!;
        const cc = parse(text) as {
          bootcmd: string[][];
          write_files: Array<{ path: string }>;
          packages?: unknown;
          users: Array<{ name: string }>;
        };
        for (const other of r.plan!.hosts)
          if (other.name !== h.name) {
            assert.ok(!text.includes(other.vpnAddress + '/'), `${h.name} names ${other.name}`);
            assert.ok(!text.includes(other.wireguard.publicKey), `${h.name} names ${other.name}`);
          }
        assert.equal(cc.packages, undefined, 'packages come with the bundle');
        assert.deepEqual(
          cc.write_files.map((f) => f.path),
          ['/etc/ssh/sshd_config.d/50-vigil.conf', '/etc/nftables.conf'],
        );
        assert.deepEqual(
          cc.users.map((u) => u.name),
          [r.topology.ssh.user],
        );
        const fw = cc.bootcmd[0]!;
        assert.deepEqual(fw.slice(0, 3), ['cloud-init-per', 'once', 'vigil-bootstrap-firewall']);
        assert.match(fw.at(-1)!, /policy drop;/);
        assert.match(fw.at(-1)!, new RegExp(`tcp dport ${r.topology.ssh.port} accept`));
      }
    }
  } finally {
    removeDir(work);
  }
});

test('the chain node cannot reach the metadata service; the agent owns its config alone', () => {
  const work = tempDir('metadata');
  try {
    for (const name of exampleNames()) {
      const r = planFleet(join(EXAMPLES_DIR, `${name}.yaml`), {
        state: join(work, name),
        write: false,
      });
      for (const h of r.plan!.hosts) {
        const nft = r.files!.get(`hosts/${h.name}/files/etc__nftables.conf`)!;
        const m = ManifestSchema.parse(
          JSON.parse(r.files!.get(`hosts/${h.name}/bundle/manifest.json`)!),
        );
        if (h.chain) {
          assert.match(nft, new RegExp(`meta skuid ${NODE_UID} ip daddr ${METADATA_V4} drop`));
          if (h.provider === 'aws') assert.match(nft, /ip6 daddr fd00:ec2::254 drop/);
          assert.equal(m.users.find((u) => u.name === 'chainnode')?.uid, NODE_UID);
        }
        const agent = m.files.find((f) => f.path === '/etc/vigil/agent.yaml');
        if (agent) assert.deepEqual([agent.owner, agent.mode], ['vigild:vigild', '0600']);
      }
    }
  } finally {
    removeDir(work);
  }
});
