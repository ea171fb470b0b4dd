/**
 * The Debian image `npm run test:vm` boots: a debootstrapped bookworm root file system made
 * into an ext4 disk image, with the kernel and initrd taken out of it for a direct kernel boot
 * (no partition table, no bootloader). Cached by a key of everything that goes into it, so a
 * rerun only boots.
 *
 * What goes in is what a Debian cloud image has and nothing the rendered host installs itself:
 * debootstrap's default set (required + important priorities, which already bring nftables, as
 * Debian's cloud images have it) plus the kernel, cloud-init, OpenSSH, sudo and ifupdown with a
 * DHCP client (cloud-init 22.4 on bookworm renders its network config for ifupdown). The
 * packages the host's bundle asks for (curl, wireguard, prometheus-node-exporter, …) are not
 * preinstalled: cloud-init and install.sh fetch them from the mirror at boot, as on a cloud.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export const SUITE = 'bookworm';
/** Beyond debootstrap's default (required + important) set; see the header. */
export const INCLUDE = [
  'linux-image-amd64',
  'systemd-sysv',
  'udev',
  'cloud-init',
  'openssh-server',
  'sudo',
  'ifupdown',
  'isc-dhcp-client',
  'ca-certificates',
  // debootstrap does not resolve virtual packages: python3-cryptography (cloud-init's
  // dependency through python3-oauthlib) depends on python3-cffi-backend-api-min, which only
  // python3-cffi-backend provides; without it cloud-init is left unconfigured.
  'python3-cffi-backend',
];
/** Bump when configureRootfs changes what it writes. */
const CONFIG_VERSION = 4;
const IMAGE_SIZE = '5G';

export interface ImageOptions {
  readonly cacheDir: string;
  readonly mirror: string;
  /** The mirror host's address as this machine resolves it (written into the guest's hosts). */
  readonly mirrorAddress?: string;
  readonly log: (line: string) => void;
}

export interface BuiltImage {
  readonly disk: string;
  readonly kernel: string;
  readonly initrd: string;
  /** Seconds spent building now (0 when it came from the cache). */
  readonly debootstrapSeconds: number;
  readonly imageSeconds: number;
  readonly cached: boolean;
}

function key(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export function run(cmd: string, args: string[], timeoutMs: number): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}:\n${(r.stderr || r.stdout).trim().split('\n').slice(-15).join('\n')}`,
    );
  return r.stdout;
}

/** The mirror's host name and the address this machine gives it in /etc/hosts, if any. */
export function mirrorHostsEntry(mirror: string): { host: string; address?: string } {
  const host = new URL(mirror).hostname;
  const r = spawnSync('getent', ['hosts', host], { encoding: 'utf8' });
  const address = r.status === 0 ? r.stdout.trim().split(/\s+/)[0] : undefined;
  return address ? { host, address } : { host };
}

/** What a Debian cloud image adds to a plain system, and what this machine's mirror needs. */
function configureRootfs(rootfs: string, opts: ImageOptions): void {
  const { host, address } = mirrorHostsEntry(opts.mirror);
  const hostsLine = address ? `${address} ${host}\n` : '';
  // The guest resolves through slirp's DNS, which does not see this machine's /etc/hosts: the
  // mirror's address goes into the guest's own (and cloud-init's template, should it rewrite it).
  writeFileSync(join(rootfs, 'etc/hosts'), `127.0.0.1 localhost\n::1 localhost\n${hostsLine}`);
  const template = join(rootfs, 'etc/cloud/templates/hosts.debian.tmpl');
  if (existsSync(template) && hostsLine && !readFileSync(template, 'utf8').includes(hostsLine))
    appendFileSync(template, hostsLine);
  const m = opts.mirror.replace(/\/debian\/?$/, '');
  writeFileSync(
    join(rootfs, 'etc/apt/sources.list'),
    [
      `deb ${m}/debian ${SUITE} main`,
      `deb ${m}/debian ${SUITE}-updates main`,
      `deb ${m}/debian-security ${SUITE}-security main`,
      '',
    ].join('\n'),
  );
  // Brought up to date with -updates and -security when the image is made, as a published
  // cloud image is: otherwise the first boot's package_upgrade (a new kernel, its initramfs)
  // takes over half an hour under software emulation (measured: > 30 min on 2 cores).
  upgradeRootfs(rootfs);
  // Only the NoCloud seed is looked for: probing cloud metadata services over slirp would
  // time out one after the other.
  writeFileSync(
    join(rootfs, 'etc/cloud/cloud.cfg.d/90-vigil-vm.cfg'),
    // manage_etc_hosts: the hostname the user data sets resolves locally (sudo looks it up
    // on every call; over slirp's DNS each lookup waits for a timeout).
    'datasource_list: [NoCloud, None]\nmanage_etc_hosts: true\n',
  );
  writeFileSync(
    join(rootfs, 'etc/fstab'),
    'LABEL=vigil-root / ext4 defaults,errors=remount-ro 0 1\n',
  );
  // cloud-init's locale module sets LANG=en_US.UTF-8 and fails (an error in its result) when
  // that locale was never generated (Debian's locale-gen makes what /etc/locale.gen enables,
  // whatever name cloud-init 22.4 passes it, and update-locale then refuses the setting).
  // Debian's cloud images come with it generated; so does this one.
  writeFileSync(join(rootfs, 'etc/locale.gen'), 'en_US.UTF-8 UTF-8\n');
  writeFileSync(join(rootfs, 'etc/default/locale'), 'LANG=en_US.UTF-8\n');
  run('chroot', [rootfs, 'locale-gen'], 5 * 60_000);
  // Every boot of a copy is a new machine: systemd makes the id on first boot.
  writeFileSync(join(rootfs, 'etc/machine-id'), '');
  rmSync(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  // Host keys are made by cloud-init on first boot (cc_ssh), as on a cloud image.
  for (const f of readdirSync(join(rootfs, 'etc/ssh')))
    if (f.startsWith('ssh_host_')) rmSync(join(rootfs, 'etc/ssh', f));
}

/** Kernel file names in version order (6.1.0-9 before 6.1.0-57, which a plain sort reverses). */
const byVersion = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/** apt-get dist-upgrade inside the root file system; services are kept from starting. */
function upgradeRootfs(rootfs: string): void {
  const policy = join(rootfs, 'usr/sbin/policy-rc.d');
  writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  run('mount', ['-t', 'proc', 'proc', join(rootfs, 'proc')], 60_000);
  try {
    const apt = (...args: string[]) =>
      run(
        'chroot',
        [
          rootfs,
          'env',
          'DEBIAN_FRONTEND=noninteractive',
          'apt-get',
          '-y',
          '-q',
          '-o',
          'Dpkg::Options::=--force-confold',
          ...args,
        ],
        30 * 60_000,
      );
    apt('update');
    apt('dist-upgrade');
    apt('clean');
  } finally {
    spawnSync('umount', [join(rootfs, 'proc')]);
    rmSync(policy, { force: true });
  }
}

export function buildImage(opts: ImageOptions): BuiltImage {
  mkdirSync(opts.cacheDir, { recursive: true });
  const rootfsKey = key({ suite: SUITE, arch: 'amd64', include: INCLUDE, mirror: opts.mirror });
  const rootfs = join(opts.cacheDir, `rootfs-${rootfsKey}`);
  const { address } = mirrorHostsEntry(opts.mirror);
  const imageKey = key({ rootfsKey, address, CONFIG_VERSION, IMAGE_SIZE });
  const dir = join(opts.cacheDir, `image-${imageKey}`);
  const disk = join(dir, 'root.ext4');
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initrd.img');
  if (existsSync(join(dir, 'complete')))
    return { disk, kernel, initrd, debootstrapSeconds: 0, imageSeconds: 0, cached: true };

  let debootstrapSeconds = 0;
  if (!existsSync(join(rootfs, '.vigil-complete'))) {
    const wip = `${rootfs}.wip`;
    rmSync(wip, { recursive: true, force: true });
    opts.log(`debootstrap ${SUITE} from ${opts.mirror} into ${wip} (several minutes)`);
    const t0 = Date.now();
    run(
      'debootstrap',
      ['--arch=amd64', `--include=${INCLUDE.join(',')}`, SUITE, wip, opts.mirror],
      40 * 60_000,
    );
    debootstrapSeconds = (Date.now() - t0) / 1000;
    writeFileSync(join(wip, '.vigil-complete'), `${new Date().toISOString()}\n`);
    renameSync(wip, rootfs);
    opts.log(`debootstrap done in ${debootstrapSeconds.toFixed(0)} s`);
  }

  const t1 = Date.now();
  configureRootfs(rootfs, opts);
  const boot = readdirSync(join(rootfs, 'boot'));
  const vmlinuz = boot
    .filter((f) => /^vmlinuz-.*-amd64$/.test(f))
    .sort(byVersion)
    .pop();
  const initramfs = boot
    .filter((f) => /^initrd\.img-.*-amd64$/.test(f))
    .sort(byVersion)
    .pop();
  if (!vmlinuz || !initramfs)
    throw new Error(
      `${rootfs}/boot has no vmlinuz-*/initrd.img-*: was linux-image-amd64 installed?`,
    );
  const wipDir = `${dir}.wip`;
  rmSync(wipDir, { recursive: true, force: true });
  mkdirSync(wipDir, { recursive: true });
  copyFileSync(join(rootfs, 'boot', vmlinuz), join(wipDir, 'vmlinuz'));
  copyFileSync(join(rootfs, 'boot', initramfs), join(wipDir, 'initrd.img'));
  // mke2fs -d copies the tree with its owners and modes: no loop device, no mount.
  run(
    'mkfs.ext4',
    ['-q', '-F', '-L', 'vigil-root', '-d', rootfs, join(wipDir, 'root.ext4'), IMAGE_SIZE],
    20 * 60_000,
  );
  writeFileSync(join(wipDir, 'complete'), `${vmlinuz}\n${initramfs}\n`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(wipDir, dir);
  const imageSeconds = (Date.now() - t1) / 1000;
  opts.log(`image ${disk} made in ${imageSeconds.toFixed(0)} s (kernel ${vmlinuz})`);
  return { disk, kernel, initrd, debootstrapSeconds, imageSeconds, cached: false };
}
