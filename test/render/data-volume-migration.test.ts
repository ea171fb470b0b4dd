/**
 * Issue 12, a data volume added to a running host: `vigil-data-volume` moves the chain's data
 * from the root disk onto the new volume. Run for real as root against a loop device this test
 * makes, with a SIGKILL injected as each step of the migration begins: after the crash, what a
 * boot would mount (the fstab line for the mount point, else the root disk's directory) holds
 * every file intact; a re-run completes the migration, the volume is in use with the same
 * files, modes, owners, links and contents, and the old copy is gone from the root disk.
 * systemd does not run in this container: VIGIL_SYSTEMCTL points at a stand-in that keeps each
 * unit's active/enabled state in files and logs every call, so the test sees which units were
 * stopped and started and in which order (test/vm boots real systemd).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { DATA_VOLUME_MIGRATION_STEPS, DATA_VOLUME_SCRIPT } from '../../src/render/volume.js';
import { removeDir, tempDir } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const TOOLS = ['losetup', 'mkfs.ext4', 'blkid', 'findfs', 'e2label', 'wipefs', 'mount', 'findmnt'];
const haveTools = TOOLS.every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0);
if (!isRoot || !haveTools)
  console.error('\n*** SKIPPING the data volume migration test: needs root and util-linux ***\n');

/** Units: the node (active, enabled), a supervised standby (active, not enabled), one stopped. */
const UNITS = ['hub-node.service', 'hub-sync.service', 'hub-idle.service'];

/**
 * systemctl stand-in: `is-active`/`is-enabled` [--quiet] UNIT, `stop`/`start` UNIT...,
 * `daemon-reload`; state in $SYSTEMCTL_STATE/<unit>.active|.enabled, calls in .../log.
 */
const STAND_IN_SYSTEMCTL = `#!/bin/sh
d="$SYSTEMCTL_STATE"
echo "$*" >> "$d/log"
cmd="$1"; shift
[ "\${1:-}" = "--quiet" ] && shift
case "$cmd" in
  is-active) [ -e "$d/$1.active" ] ;;
  is-enabled) [ -e "$d/$1.enabled" ] ;;
  stop) for u in "$@"; do rm -f "$d/$u.active"; done ;;
  start) for u in "$@"; do : > "$d/$u.active"; done ;;
  daemon-reload) ;;
  *) echo "systemctl stand-in: $cmd?" >&2; exit 1 ;;
esac
`;

interface Entry {
  type: string;
  mode: number;
  owner: string;
  size?: number;
  nlink?: number;
  target?: string;
  sha256?: string;
}

/** Everything the migration must keep, read with Node (independent of the script's checks). */
function manifest(dir: string): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const walk = (rel: string) => {
    const p = join(dir, rel);
    const s = lstatSync(p);
    const e: Entry = {
      type: s.isDirectory() ? 'd' : s.isSymbolicLink() ? 'l' : s.isFile() ? 'f' : 'other',
      mode: s.mode & 0o7777,
      owner: `${s.uid}:${s.gid}`,
    };
    if (e.type === 'f') {
      e.size = s.size;
      e.nlink = s.nlink;
      e.sha256 = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
    if (e.type === 'l') e.target = readlinkSync(p);
    out[rel || '.'] = e;
    if (e.type === 'd')
      for (const n of readdirSync(p).sort())
        if (!(rel === '' && n === 'lost+found')) walk(rel ? `${rel}/${n}` : n);
  };
  walk('');
  return out;
}

/** A chain database as a node leaves it: owned by the node's user, with links and odd modes. */
function seedData(mnt: string, bigBytes: number): void {
  mkdirSync(join(mnt, 'blockstore.db'), { recursive: true });
  mkdirSync(join(mnt, 'snapshots', 'empty'), { recursive: true });
  writeFileSync(join(mnt, 'blockstore.db', '000001.ldb'), randomBytes(bigBytes));
  writeFileSync(join(mnt, 'blockstore.db', 'CURRENT'), 'MANIFEST-000002\n');
  writeFileSync(join(mnt, 'priv_validator_state.json'), '{"height":"12345","round":0}\n', {
    mode: 0o600,
  });
  writeFileSync(join(mnt, '.lock'), '');
  linkSync(join(mnt, 'blockstore.db', 'CURRENT'), join(mnt, 'CURRENT.hardlink'));
  symlinkSync('blockstore.db/CURRENT', join(mnt, 'current-link'));
  for (const p of ['.', 'blockstore.db', 'blockstore.db/000001.ldb', 'snapshots', '.lock'])
    chownSync(join(mnt, p), 4242, 4242);
  spawnSync('chmod', ['0750', mnt]);
}

describe('migrating a chain database onto a new volume', { skip: !isRoot || !haveTools }, () => {
  let work = '';
  let loop = '';
  let script = '';
  const label = `vm${process.pid.toString(36)}`.slice(0, 16);
  const staging = `${label.slice(0, 11)}-copy`;

  const run = (c: Case, env: NodeJS.ProcessEnv = {}): SpawnSyncReturns<string> =>
    spawnSync('sh', [script, '--units', UNITS.join(' '), label, c.mnt, loop], {
      encoding: 'utf8',
      env: {
        ...process.env,
        VIGIL_FSTAB: c.fstab,
        VIGIL_SYSTEMCTL: join(work, 'systemctl'),
        SYSTEMCTL_STATE: c.units,
        ...env,
      },
    });
  const findmnt = (args: string[]) =>
    spawnSync('findmnt', ['-n', ...args], { encoding: 'utf8' }).stdout.trim();
  const isMount = (p: string) => spawnSync('mountpoint', ['-q', p]).status === 0;

  interface Case {
    dir: string;
    mnt: string;
    fstab: string;
    units: string;
    expected: Record<string, Entry>;
  }

  /** Every mount of the loop device, deepest first (a failed case may leave some). */
  function unmountLoop(): void {
    const targets = spawnSync('findmnt', ['-n', '-l', '-o', 'TARGET', '-S', loop], {
      encoding: 'utf8',
    })
      .stdout.split('\n')
      .filter(Boolean);
    for (const m of targets.sort((a, b) => b.length - a.length)) spawnSync('umount', [m]);
  }

  function freshCase(name: string, bigBytes = 3 << 20): Case {
    unmountLoop();
    // The volume is blank again: nothing of an earlier case may help this one.
    assert.equal(spawnSync('wipefs', ['-a', '-q', loop]).status, 0);
    const dir = join(work, name);
    const mnt = join(dir, 'var/lib/hub/data');
    const units = join(dir, 'units');
    mkdirSync(units, { recursive: true });
    mkdirSync(mnt, { recursive: true });
    seedData(mnt, bigBytes);
    for (const f of [
      'hub-node.service.active',
      'hub-node.service.enabled',
      'hub-sync.service.active',
    ])
      writeFileSync(join(units, f), '');
    const fstab = join(dir, 'fstab');
    writeFileSync(fstab, '# static file system information\nLABEL=root / ext4 defaults 0 1\n');
    return { dir, mnt, fstab, units, expected: manifest(mnt) };
  }

  /** The fstab line that mounts the case's mount point, if any. */
  function fstabSpec(c: Case): string | undefined {
    for (const line of readFileSync(c.fstab, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (!line.startsWith('#') && f[1] === c.mnt) return f[0];
    }
    return undefined;
  }

  /** What a boot now would give the node at the mount point holds the data intact. */
  function assertBootSeesData(c: Case, when: string): void {
    const spec = fstabSpec(c);
    if (spec === undefined) {
      assert.ok(!isMount(c.mnt), `${when}: mounted without an fstab line`);
      assert.deepEqual(manifest(c.mnt), c.expected, `${when}: root disk copy damaged`);
      return;
    }
    const dev = spawnSync('findfs', [spec], { encoding: 'utf8' }).stdout.trim();
    assert.equal(dev, loop, `${when}: fstab names ${spec}, not the volume`);
    const check = join(c.dir, 'boot-check');
    mkdirSync(check, { recursive: true });
    // The volume may still be mounted (rw) where the crash left it: a second mount, not ro.
    const m = spawnSync('mount', [dev, check], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
    try {
      assert.deepEqual(manifest(check), c.expected, `${when}: the committed volume is incomplete`);
    } finally {
      spawnSync('umount', [check]);
    }
  }

  function assertMigrated(c: Case, when: string): void {
    assert.ok(isMount(c.mnt), `${when}: not mounted`);
    assert.equal(findmnt(['-o', 'LABEL', '--mountpoint', c.mnt]), label, when);
    assert.deepEqual(manifest(c.mnt), c.expected, `${when}: data on the volume differs`);
    const fstab = readFileSync(c.fstab, 'utf8');
    assert.equal(
      fstab.split('\n').filter((l) => l.split(/\s+/)[1] === c.mnt).length,
      1,
      `${when}: ${fstab}`,
    );
    assert.match(fstab, /^LABEL=root \/ ext4/m, 'other fstab lines kept');
    assert.ok(!existsSync(join(dirname(c.mnt), '.data.vigil-migrate')), `${when}: state left`);
    // The node is running again; the supervised standby (not enabled) is its watchdog's business.
    assert.ok(existsSync(join(c.units, 'hub-node.service.active')), `${when}: node not started`);
    assert.ok(!existsSync(join(c.units, 'hub-sync.service.active')), `${when}: standby started`);
    assert.ok(!existsSync(join(c.units, 'hub-idle.service.active')), when);
    const log = readFileSync(join(c.units, 'log'), 'utf8').split('\n');
    const stop = log.indexOf(`stop ${UNITS.join(' ')}`);
    assert.ok(stop >= 0, `${when}: ${log.join('|')}`);
    assert.ok(log.lastIndexOf('start hub-node.service') > stop, when);
    // Below the mount, the root disk no longer holds the old copy.
    assert.equal(spawnSync('umount', [c.mnt]).status, 0);
    assert.deepEqual(readdirSync(c.mnt), [], `${when}: old data left on the root disk`);
  }

  before(() => {
    work = tempDir('migrate');
    script = join(work, 'vigil-data-volume');
    writeFileSync(script, DATA_VOLUME_SCRIPT, { mode: 0o755 });
    writeFileSync(join(work, 'systemctl'), STAND_IN_SYSTEMCTL, { mode: 0o755 });
    spawnSync('truncate', ['-s', '64M', join(work, 'disk.img')]);
    const r = spawnSync('losetup', ['--find', '--show', join(work, 'disk.img')], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    loop = r.stdout.trim();
  });

  after(() => {
    if (loop) unmountLoop();
    for (const m of findmnt(['-l', '-o', 'TARGET'])
      .split('\n')
      .filter((t) => work && t.startsWith(work)))
      spawnSync('umount', [m]);
    if (loop) spawnSync('losetup', ['--detach', loop]);
    removeDir(work);
  });

  it('moves the data in one run', () => {
    const c = freshCase('straight');
    const r = run(c);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /migrated onto the volume/);
    assert.match(
      readFileSync(c.fstab, 'utf8'),
      new RegExp(`^UUID=\\S+ ${c.mnt} ext4 .*nofail`, 'm'),
    );
    assertMigrated(c, 'straight');
  });

  for (const step of DATA_VOLUME_MIGRATION_STEPS)
    it(`a crash as '${step}' begins leaves the data in use; a re-run completes the move`, () => {
      const c = freshCase(`kill-${step}`);
      const killed = run(c, { VIGIL_DATA_VOLUME_KILL_AT: step });
      assert.equal(killed.signal, 'SIGKILL', `${step}: ${killed.stderr}`);
      assertBootSeesData(c, `after a crash at ${step}`);
      const again = run(c);
      assert.equal(again.status, 0, `${step}: ${again.stderr}`);
      assertMigrated(c, `re-run after ${step}`);
      if (step !== 'stop' && step !== 'format')
        assert.doesNotMatch(
          spawnSync('blkid', ['-p', '-s', 'LABEL', '-o', 'value', loop], { encoding: 'utf8' })
            .stdout,
          new RegExp(staging),
        );
    });

  it('a volume too small: nothing moves, the units come back', () => {
    const c = freshCase('small', 80 << 20);
    const r = run(c);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /give hosts\[\]\.disk more/);
    assert.equal(fstabSpec(c), undefined);
    assert.ok(!isMount(c.mnt));
    assert.deepEqual(manifest(c.mnt), c.expected);
    assert.ok(existsSync(join(c.units, 'hub-node.service.active')));
    assert.ok(!existsSync(join(dirname(c.mnt), '.data.vigil-migrate')));
  });
});
