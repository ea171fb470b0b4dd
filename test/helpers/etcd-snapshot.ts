/**
 * Snapshots and restores of a test cluster (EtcdTestCluster) with the real etcd tools, for the
 * tests that show what agents see when the guard cluster is rebuilt from a backup.
 *
 * etcd 3.5+ ships `etcdutl`, whose `snapshot restore` can raise the revision
 * (`--bump-revision`, `--mark-compacted`); etcd 3.4 (Debian's etcd-server) has only
 * `etcdctl snapshot restore`, without them. `restoreTool()` says which one is here.
 */
import { execFile, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import type { EtcdTestCluster } from './etcd-cluster.js';

const run = promisify(execFile);
const ENV = { ...process.env, ETCDCTL_API: '3' };

export function etcdutlAvailable(): boolean {
  const r = spawnSync('etcdutl', ['version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

export function restoreTool(): 'etcdutl' | 'etcdctl' {
  return etcdutlAvailable() ? 'etcdutl' : 'etcdctl';
}

const hostPort = (url: string) => url.replace(/^[a-z]+:\/\//, '');

/** `etcdctl snapshot save` from one live member. */
export async function saveSnapshot(cluster: EtcdTestCluster, path: string): Promise<void> {
  await run('etcdctl', ['--endpoints', hostPort(cluster.endpoints[0]!), 'snapshot', 'save', path], {
    env: ENV,
  });
}

/** The cluster id the member at `endpoint` puts in its response headers, asked with etcdctl. */
export async function clusterIdOf(endpoint: string): Promise<bigint> {
  const { stdout } = await run(
    'etcdctl',
    ['--endpoints', hostPort(endpoint), 'endpoint', 'status', '-w', 'json'],
    { env: ENV },
  );
  // The id is a uint64 printed as a bare JSON number: read the digits, not a double.
  const m = /"cluster_id":(\d+)/.exec(stdout);
  if (!m) throw new Error(`no cluster_id in etcdctl endpoint status output: ${stdout}`);
  return BigInt(m[1]!);
}

export interface RestoreOptions {
  /**
   * `--initial-cluster-token` of the restored cluster. The cluster id is derived from it and
   * the members' peer URLs: the same token and URLs give the same cluster id again.
   */
  readonly token: string;
  /** etcdutl only: `--bump-revision <n> --mark-compacted`. */
  readonly bumpRevision?: bigint;
}

/**
 * Kills every member, replaces each data dir with a restore of `snapshot` (same names, same
 * peer URLs, so the members' own config still fits) and starts them again.
 */
export async function rebuildFromSnapshot(
  cluster: EtcdTestCluster,
  snapshot: string,
  options: RestoreOptions,
): Promise<void> {
  for (let i = 0; i < cluster.members.length; i++) await cluster.killMember(i);
  const tool = options.bumpRevision !== undefined ? 'etcdutl' : restoreTool();
  for (const m of cluster.members) {
    const c = m.config;
    rmSync(c.dataDir, { recursive: true, force: true });
    const initialCluster = Object.entries(c.initialCluster)
      .map(([name, url]) => `${name}=${url}`)
      .join(',');
    await run(
      tool,
      [
        'snapshot',
        'restore',
        snapshot,
        `--name=${c.name}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${options.token}`,
        `--initial-advertise-peer-urls=${(c.advertisePeerUrls ?? c.listenPeerUrls).join(',')}`,
        `--data-dir=${c.dataDir}`,
        ...(options.bumpRevision !== undefined
          ? [`--bump-revision=${options.bumpRevision}`, '--mark-compacted']
          : []),
      ],
      { env: ENV },
    );
  }
  for (let i = 0; i < cluster.members.length; i++) cluster.startMember(i);
  await cluster.waitHealthy();
}
