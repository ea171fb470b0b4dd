/**
 * Issue 12, disks per chain: every chain host gets the disk its recipe needs, as a root disk
 * Terraform sizes (AWS, GCP, UpCloud) or a block volume where the size fixes a smaller disk
 * (Hetzner, DigitalOcean, Vultr, Linode), mounted by the bundle before the node starts; lint
 * refuses a host whose disk cannot hold its chain. The mount script runs for real against a
 * loop device this test makes (root only; skipped loudly otherwise).
 */
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildPlan } from '../../src/topology/plan.js';
import { lintTopology } from '../../src/topology/lint.js';
import { CLOUD_PROVIDERS, type TopologyInput } from '../../src/topology/schema.js';
import { OS_DISK_GB, PLAN_DISKS, chainDataGB, diskPlan } from '../../src/topology/disks.js';
import { PlanState } from '../../src/render/state.js';
import { renderTerraform, tfName } from '../../src/render/terraform.js';
import { renderHost } from '../../src/render/cloud-init.js';
import {
  DATA_VOLUME_COMMAND,
  DATA_VOLUME_LABEL,
  DATA_VOLUME_SCRIPT,
  dataMountPoint,
} from '../../src/render/volume.js';
import { artifact, baseInput, cosmosApp, genesis, topology } from '../topology/fixtures.js';
import { removeDir, tempDir } from './helpers.js';

type Block = Record<string, unknown>;
interface TfDoc {
  resource: Record<string, Record<string, Block>>;
}

/** One Cosmos Hub sentry per cloud provider, on a size whose disk (if fixed) is too small. */
function sentriesEverywhere(): TopologyInput {
  const small: Record<string, string> = {
    digitalocean: 's-4vcpu-8gb',
    hetzner: 'cpx41',
    vultr: 'vc2-4c-8gb',
    linode: 'g6-standard-4',
    ovh: 'b3-64',
  };
  return {
    ...baseInput(),
    spread: false,
    providers: { gcp: { project: 'p' }, ovh: { serviceName: 's' } },
    chains: [
      {
        name: 'hub',
        kind: 'cometbft',
        chainId: 'cosmoshub-4',
        binary: artifact('gaiad'),
        genesis: genesis(),
        app: cosmosApp(),
      },
    ],
    hosts: [
      ...baseInput().hosts,
      ...CLOUD_PROVIDERS.map((p) => ({
        name: `sentry-${p}`,
        role: 'sentry' as const,
        chain: 'hub',
        provider: p,
        region: p === 'gcp' ? 'europe-west3-a' : p === 'aws' ? 'eu-west-1' : 'r1',
        size: small[p] ?? 'm',
        ...(p === 'ovh' ? { image: '11111111-2222-3333-4444-555555555555' } : {}),
      })),
    ],
  };
}

let root = '';
before(() => {
  root = tempDir('disks');
});
after(() => removeDir(root));

test('chain recipes state their data; roles without a chain need little', () => {
  const t = topology(sentriesEverywhere());
  const hub = t.chains[0]!;
  assert.equal(chainDataGB(hub), 600);
  const need = OS_DISK_GB + 600;
  for (const p of ['aws', 'gcp', 'upcloud'] as const)
    assert.deepEqual(diskPlan({ provider: p, size: 'x', role: 'sentry' }, hub), {
      dataGB: 600,
      needGB: need,
      rootGB: need,
    });
  // A fixed disk a source confirms holds it: no volume. One too small, unknown, or only
  // remembered (unchecked): a volume of the data.
  assert.equal(
    diskPlan({ provider: 'linode', size: 'g6-standard-16', role: 'sentry' }, hub).volumeGB,
    undefined,
  );
  assert.equal(
    diskPlan({ provider: 'linode', size: 'g6-standard-4', role: 'sentry' }, hub).volumeGB,
    600,
  );
  const unchecked = diskPlan({ provider: 'hetzner', size: 'ccx63', role: 'sentry' }, hub);
  assert.deepEqual(
    [unchecked.planDiskGB, unchecked.planDiskChecked, unchecked.volumeGB],
    [960, false, 600],
  );
  assert.equal(diskPlan({ provider: 'hetzner', size: 'cpx41', role: 'sentry' }, hub).volumeGB, 600);
  assert.equal(diskPlan({ provider: 'vultr', size: 'nope', role: 'sentry' }, hub).volumeGB, 600);
  // OVH cannot attach one; monitors and guards never get one.
  assert.equal(
    diskPlan({ provider: 'ovh', size: 'b3-8', role: 'sentry' }, hub).volumeGB,
    undefined,
  );
  assert.equal(
    diskPlan({ provider: 'hetzner', size: 'cx22', role: 'monitor' }, undefined).needGB,
    35,
  );
  // The topology's override wins.
  assert.equal(
    diskPlan({ provider: 'linode', size: 'g6-standard-4', role: 'sentry', disk: 900 }, hub)
      .volumeGB,
    900,
  );
});

test('every plan disk figure names the source it was read from, or says it is unchecked', () => {
  let checked = 0;
  for (const [provider, sizes] of Object.entries(PLAN_DISKS))
    for (const [size, d] of Object.entries(sizes!)) {
      assert.ok(Number.isInteger(d.gb) && d.gb > 0, `${provider} ${size}`);
      if (d.source === null) continue;
      // A repository, a 40-hex commit and a file in it.
      assert.match(
        d.source,
        /^[\w.-]+\/[\w.-]+ .*\b[0-9a-f]{40}\b.* \S+\.(go|yaml)\b/,
        `${provider} ${size}`,
      );
      checked++;
    }
  // Hetzner cpx11 and cpx22, and the 12 Linode types.
  assert.equal(checked, 14);
  assert.equal(PLAN_DISKS.linode!['g6-standard-4']!.gb, 160);
});

test('Terraform: root disks sized where the provider allows it, volumes where the disk is fixed', () => {
  const input = sentriesEverywhere();
  // OVH's b3-64 (400 GB) cannot hold 620 GB and gets no volume: lint refuses it (below).
  input.hosts = input.hosts!.filter((h) => h.provider !== 'ovh');
  const t = topology(input);
  assert.deepEqual(
    lintTopology(t).filter((f) => f.severity === 'error'),
    [],
  );
  const plan = buildPlan(t, new PlanState(join(root, 'tf')));
  const tf = JSON.parse(renderTerraform(plan)) as TfDoc;
  const r = tf.resource;
  const need = OS_DISK_GB + 600;
  const n = (p: string) => tfName(`sentry-${p}`);
  assert.deepEqual(r.aws_instance![n('aws')]!.root_block_device, [
    { volume_size: need, volume_type: 'gp3' },
  ]);
  const boot = r.google_compute_instance![n('gcp')]!.boot_disk as Array<{
    initialize_params: Array<{ size: number }>;
  }>;
  assert.equal(boot[0]!.initialize_params[0]!.size, need);
  const template = r.upcloud_server![n('upcloud')]!.template as Array<{ size: number }>;
  assert.equal(template[0]!.size, need);

  const hz = `${n('hetzner')}_data`;
  assert.equal(r.hcloud_volume![hz]!.size, 600);
  assert.equal(r.hcloud_volume![hz]!.location, 'r1');
  assert.equal(r.hcloud_volume![hz]!.format, undefined, 'Hetzner must not format it');
  assert.equal(r.hcloud_volume_attachment![hz]!.server_id, `\${hcloud_server.${n('hetzner')}.id}`);
  assert.equal(r.hcloud_volume_attachment![hz]!.volume_id, `\${hcloud_volume.${hz}.id}`);
  const dov = `${n('digitalocean')}_data`;
  assert.equal(r.digitalocean_volume![dov]!.size, 600);
  assert.equal(r.digitalocean_volume![dov]!.initial_filesystem_type, undefined);
  assert.equal(
    r.digitalocean_volume_attachment![dov]!.droplet_id,
    `\${digitalocean_droplet.${n('digitalocean')}.id}`,
  );
  assert.equal(r.vultr_block_storage![`${n('vultr')}_data`]!.size_gb, 600);
  assert.equal(
    r.vultr_block_storage![`${n('vultr')}_data`]!.attached_to_instance,
    `\${vultr_instance.${n('vultr')}.id}`,
  );
  const lv = r.linode_volume![`${n('linode')}_data`]!;
  assert.equal(lv.size, 600);
  assert.equal(lv.linode_id, `\${linode_instance.${n('linode')}.id}`);
  assert.ok((lv.label as string).length <= 32);
  // The monitor (cx22, 40 GB for 35) needs none.
  assert.equal(r.hcloud_volume![`monitor_data`], undefined);

  // The bundle mounts the volume at the chain's database directory before making the chain's
  // directories, and every chain unit requires the mount.
  const hub = t.chains[0]!;
  for (const h of plan.hosts.filter((x) => x.chain)) {
    const { files, setup } = renderHost(plan, h, new PlanState(join(root, 'tf')));
    const mountAt = setup.commands.findIndex((c) => c[0] === DATA_VOLUME_COMMAND);
    if (h.disk.volumeGB === undefined) {
      assert.equal(mountAt, -1, `${h.name} has no volume to mount`);
      continue;
    }
    // The node's units, stopped while data already on the root disk moves onto the volume.
    assert.deepEqual(setup.commands[mountAt]!.slice(1, 5), [
      '--units',
      'hub-node.service',
      DATA_VOLUME_LABEL,
      dataMountPoint(hub),
    ]);
    const mkdir = setup.commands.findIndex((c) => c[0] === 'mkdir' && c.includes('/var/lib/hub'));
    assert.ok(mountAt >= 0 && mountAt < mkdir, `${h.name}: mount before mkdir`);
    assert.ok(files.some((f) => f.path === DATA_VOLUME_COMMAND));
    const dropIn = files.find(
      (f) => f.path === '/etc/systemd/system/hub-node.service.d/10-vigil-data.conf',
    );
    assert.match(dropIn?.content ?? '', /RequiresMountsFor=\/var\/lib\/hub\/data/);
    if (h.provider === 'digitalocean')
      assert.match(setup.commands[mountAt]!.at(-1)!, /^\/dev\/disk\/by-id\/scsi-0DO_Volume_/);
    if (h.provider === 'vultr') assert.equal(setup.commands[mountAt]!.length, 5, 'discovered');
  }
});

test('lint: a fixed disk too small for the chain, with no volume possible, is an error', () => {
  const t = topology(sentriesEverywhere());
  const findings = lintTopology(t).filter((f) => f.code === 'disk-size');
  const ovh = findings.find((f) => f.path.endsWith('.size') && /ovh/.test(f.message));
  assert.equal(ovh?.severity, 'error', JSON.stringify(findings));
  assert.match(ovh!.message, /400 GB disk.*needs 620 GB/);
  // Unknown sizes warn; an override below the recipe warns.
  const input = sentriesEverywhere();
  input.hosts = input.hosts!.filter((h) => h.provider !== 'ovh');
  input.hosts.push({
    name: 'sentry-x',
    role: 'sentry',
    chain: 'hub',
    provider: 'vultr',
    region: 'r2',
    size: 'vx-unknown',
    disk: 100,
  });
  const more = lintTopology(topology(input)).filter((f) => f.code === 'disk-size');
  assert.ok(
    more.every((f) => f.severity === 'warning'),
    JSON.stringify(more),
  );
  assert.ok(more.some((f) => /not in Vigil's table: a 100 GB volume/.test(f.message)));
  assert.ok(more.some((f) => f.path.endsWith('.disk') && /below the 600 GB/.test(f.message)));
  // A monitor on a size too small for it has nowhere else to go.
  const tiny = baseInput();
  tiny.hosts = [
    {
      name: 'monitor',
      role: 'monitor',
      provider: 'digitalocean',
      region: 'r',
      size: 's-1vcpu-1gb',
      disk: 50,
    },
  ];
  const err = lintTopology(topology(tiny)).find(
    (f) => f.code === 'disk-size' && f.severity === 'error',
  );
  assert.match(err?.message ?? '', /25 GB disk.*; monitor needs 70 GB/);
});

test("lint: a volume attached only because the size's figure is unchecked is said so", () => {
  const input = sentriesEverywhere();
  input.hosts = input.hosts!.filter((h) => h.provider !== 'ovh');
  // 30 GB of data + the OS fits both sizes; only cpx22's 80 GB is read from a source.
  const at = (size: string) => ({
    name: `sentry-${size}`,
    role: 'sentry' as const,
    chain: 'hub',
    provider: 'hetzner' as const,
    region: 'r9',
    size,
    disk: 30,
  });
  input.hosts.push(at('ccx33'), at('cpx22'));
  const findings = lintTopology(topology(input)).filter(
    (f) => f.code === 'disk-size' && f.path.endsWith('.size'),
  );
  const hostIndex = (name: string) => input.hosts!.findIndex((h) => h.name === name);
  const about = (name: string) =>
    findings.filter((f) => f.path === `hosts[${hostIndex(name)}].size`);
  assert.equal(about('sentry-ccx33').length, 1, JSON.stringify(findings));
  assert.equal(about('sentry-ccx33')[0]!.severity, 'warning');
  assert.match(about('sentry-ccx33')[0]!.message, /240 GB\) was not checked.*30 GB volume/);
  assert.deepEqual(about('sentry-cpx22'), []);
});

const isRoot = process.getuid?.() === 0;
const haveTools = ['losetup', 'mkfs.ext4', 'blkid', 'mount', 'umount', 'findmnt'].every(
  (t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0,
);
if (!isRoot || !haveTools)
  console.error('\n*** SKIPPING the data volume script test: needs root and util-linux ***\n');

describe('the data volume script on a real block device', { skip: !isRoot || !haveTools }, () => {
  let work = '';
  let loop = '';
  let script = '';
  const mounts: string[] = [];
  const label = `vt${process.pid.toString(36)}`.slice(0, 16);
  const sh = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync('sh', [script, ...args], {
      encoding: 'utf8',
      env: { ...process.env, VIGIL_FSTAB: join(work, 'fstab'), ...env },
    });

  before(() => {
    work = tempDir('volume');
    script = join(work, 'vigil-data-volume');
    writeFileSync(script, DATA_VOLUME_SCRIPT, { mode: 0o755 });
    writeFileSync(join(work, 'disk.img'), '');
    spawnSync('truncate', ['-s', '64M', join(work, 'disk.img')]);
    const r = spawnSync('losetup', ['--find', '--show', join(work, 'disk.img')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    loop = r.stdout.trim();
  });

  after(() => {
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    if (loop) spawnSync('losetup', ['--detach', loop]);
    removeDir(work);
  });

  it('formats an empty device once, labels it, lists it in fstab and mounts it', () => {
    const mnt = join(work, 'data');
    const r = sh([label, mnt, loop]);
    assert.equal(r.status, 0, r.stderr);
    mounts.push(mnt);
    assert.equal(
      spawnSync('findmnt', ['-n', '-o', 'LABEL', '--mountpoint', mnt], {
        encoding: 'utf8',
      }).stdout.trim(),
      label,
    );
    assert.match(
      readFileSync(join(work, 'fstab'), 'utf8'),
      new RegExp(`^LABEL=${label} ${mnt} ext4 .*nofail`, 'm'),
    );
    writeFileSync(join(mnt, 'chain.db'), 'blocks');
    // Again while mounted: nothing happens. Unmounted: the label is found, nothing formatted.
    assert.equal(sh([label, mnt, loop]).status, 0);
    assert.equal(spawnSync('umount', [mnt]).status, 0);
    mounts.pop();
    const again = sh([label, mnt, '/dev/nonexistent*']);
    assert.equal(again.status, 0, again.stderr);
    mounts.push(mnt);
    assert.equal(
      readFileSync(join(mnt, 'chain.db'), 'utf8'),
      'blocks',
      'the volume was reformatted',
    );
    assert.equal(readFileSync(join(work, 'fstab'), 'utf8').split('\n').filter(Boolean).length, 1);
  });

  it('never formats a device that holds a filesystem without its label', () => {
    const other = join(work, 'other');
    const r = sh([`${label}x`, other, loop]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /refusing to format/);
  });

  it('refuses to hide files in the mount point under a volume that already has the label', () => {
    // Files on the root disk migrate onto a blank volume (data-volume-migration.test.ts); a
    // labelled volume holds data of its own, and one of the two would disappear.
    const full = join(work, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'old.db'), 'x');
    const r = sh([label, full, loop]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /already holds files on the root disk: refusing to hide either/);
    assert.equal(readFileSync(join(full, 'old.db'), 'utf8'), 'x');
  });
});
