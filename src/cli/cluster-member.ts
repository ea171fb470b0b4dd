/**
 * `vigil cluster member list|add|promote|remove`: resizing the etcd guard cluster live. The
 * rules are in src/etcd/membership.ts, the calls in src/etcd/resize.ts. Every change names the
 * cluster it is meant for (`--cluster-id`, printed by `list`) and is refused on any other.
 */
import { Command } from 'commander';
import { InputError } from '../errors.js';
import type { ClusterMember } from '../etcd/membership.js';
import { configOption } from './config-location.js';
import { storeConfig, type ClusterConnectionOptions } from './cluster.js';

interface MemberOptions extends ClusterConnectionOptions {
  clusterId?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function withConnection(cmd: Command): Command {
  return cmd
    .addOption(configOption('agent config file with `store: { engine: etcd, … }`'))
    .option('--endpoints <list>', 'comma-separated client endpoints (instead of --config)')
    .option('--ca <file>', 'cluster CA certificate')
    .option('--cert <file>', 'client certificate')
    .option('--key <file>', 'client key')
    .option('--json', 'machine-readable output');
}

function withClusterId(cmd: Command): Command {
  return cmd.requiredOption(
    '--cluster-id <hex>',
    'the id of the cluster to change, as `cluster member list` prints it: anything else is refused',
  );
}

/** Connects, runs `fn` with a resizer, closes. */
async function withResizer<T>(
  o: MemberOptions,
  fn: (r: import('../etcd/resize.js').ClusterResizer) => Promise<T>,
): Promise<T> {
  const [{ connectEtcd }, { ClusterResizer }] = await Promise.all([
    import('../store/etcd.js'),
    import('../etcd/resize.js'),
  ]);
  const { client, config } = connectEtcd(await storeConfig(o));
  const resizer = new ClusterResizer(client, {
    ...(config.tls ? { tls: config.tls } : {}),
    callTimeoutMs: config.timeouts.callMs,
  });
  try {
    return await fn(resizer);
  } finally {
    client.close();
  }
}

const print = (o: { json?: boolean }, json: unknown, text: string) =>
  process.stdout.write(o.json ? JSON.stringify(json, null, 2) + '\n' : text + '\n');

const describeMember = (m: ClusterMember) => ({
  id: m.id,
  name: m.name,
  peerUrls: m.peerUrls,
  clientUrls: m.clientUrls,
  isLearner: m.isLearner,
});

/** Hosts of URLs, split into IPs and DNS names, for the new member's certificate. */
function certHosts(urls: readonly string[]): { ips: string[]; dns: string[] } {
  const hosts = [...new Set(urls.map((u) => new URL(u).hostname.replace(/^\[|\]$/g, '')))];
  const isIp = (h: string) => /^[0-9.]+$/.test(h) || h.includes(':');
  return { ips: hosts.filter(isIp), dns: hosts.filter((h) => !isIp(h)) };
}

export function clusterMemberCommand(): Command {
  const member = new Command('member').description(
    'resize the etcd guard cluster live: list, add (as learner), promote, remove members',
  );

  withConnection(member.command('list'))
    .description('the cluster id, its members, which answer and which leads')
    .action(async (o: MemberOptions) => {
      await withResizer(o, async (r) => {
        const view = await r.view();
        const lines = [`cluster id: ${view.clusterId}`, 'members:'];
        for (const m of view.members)
          lines.push(
            `  ${(m.name || '(not started)').padEnd(14)} ${m.id.padEnd(16)} ${m.isLearner ? 'learner' : 'voter  '} ${view.healthy.has(m.id) ? 'healthy' : 'DOWN   '}${m.id === view.leaderId ? ' [leader]' : ''}  ${m.peerUrls.join(',')}`,
          );
        print(
          o,
          {
            clusterId: view.clusterId,
            leaderId: view.leaderId ?? null,
            members: view.members.map((m) => ({
              ...describeMember(m),
              healthy: view.healthy.has(m.id),
            })),
          },
          lines.join('\n'),
        );
      });
    });

  withClusterId(withConnection(member.command('add')))
    .description('add a member as a raft learner and print the etcd flags it must start with')
    .requiredOption('--name <name>', 'the new member name')
    .requiredOption(
      '--peer-url <url>',
      'URL the other members dial it at (repeatable)',
      collect,
      [],
    )
    .requiredOption('--client-url <url>', 'URL clients dial it at (repeatable)', collect, [])
    .option('--data-dir <dir>', 'its data directory', '/var/lib/etcd')
    .option('--pki <dir>', 'issue its member certificate from the CA in this directory')
    .action(
      async (
        o: MemberOptions & {
          name: string;
          peerUrl: string[];
          clientUrl: string[];
          dataDir: string;
          pki?: string;
        },
      ) => {
        const tlsUrls = [...o.peerUrl, ...o.clientUrl].filter((u) => u.startsWith('https://'));
        if (o.pki && tlsUrls.length !== o.peerUrl.length + o.clientUrl.length)
          throw new InputError('--pki issues a TLS certificate: every URL must be https://');
        await withResizer(o, async (r) => {
          const { plan, member: added } = await r.addLearner(o.clusterId!, o.name, o.peerUrl);
          let tls: { ca: string; cert: string; key: string } | undefined;
          if (o.pki) {
            const { issueCert, caPaths } = await import('../etcd/pki.js');
            const issued = await issueCert(o.pki, {
              name: o.name,
              kind: 'server',
              ...certHosts([...o.peerUrl, ...o.clientUrl]),
            });
            tls = { ca: caPaths(o.pki).cert, cert: issued.cert, key: issued.key };
          }
          const { newMemberFlags } = await import('../etcd/membership.js');
          const flags = newMemberFlags(plan, {
            clientUrls: o.clientUrl,
            dataDir: o.dataDir,
            ...(tls ? { tls } : {}),
          });
          print(
            o,
            { member: describeMember(added), flags, tls: tls ?? null },
            [
              `added ${o.name} as learner ${added.id} to cluster ${o.clusterId}`,
              ...(tls ? [`certificate: ${tls.cert} (key ${tls.key}, mode 0600)`] : []),
              'start it with:',
              `  etcd ${flags.join(' \\\n    ')}`,
              `then, once it has caught up: vigil cluster member promote ${o.name} --cluster-id ${o.clusterId}`,
            ].join('\n'),
          );
        });
      },
    );

  withClusterId(withConnection(member.command('promote')))
    .description('promote a learner to voter once it has caught up with the leader')
    .argument('<member>', 'member name or hex id')
    .option('--wait-ms <ms>', 'keep trying this long while it catches up', '60000')
    .action(async (which: string, o: MemberOptions & { waitMs: string }) => {
      await withResizer(o, async (r) => {
        const m = await r.promote(o.clusterId!, which, Number(o.waitMs));
        print(o, { promoted: describeMember(m) }, `promoted ${m.name || m.id} to voter`);
      });
    });

  withClusterId(withConnection(member.command('remove')))
    .description('remove a member, refusing a removal that would lose quorum or the last voter')
    .argument('<member>', 'member name or hex id')
    .option('--move-leader', 'if it leads, move leadership to a healthy voter first')
    .action(async (which: string, o: MemberOptions & { moveLeader?: boolean }) => {
      await withResizer(o, async (r) => {
        const plan = await r.remove(o.clusterId!, which, { moveLeader: o.moveLeader === true });
        print(
          o,
          {
            removed: describeMember(plan.member),
            movedLeaderTo: plan.moveLeaderTo ? describeMember(plan.moveLeaderTo) : null,
          },
          [
            ...(plan.moveLeaderTo
              ? [`moved leadership to ${plan.moveLeaderTo.name || plan.moveLeaderTo.id}`]
              : []),
            `removed ${plan.member.name || plan.member.id}; its etcd exits by itself: disable its service so it is not started again on that data directory`,
          ].join('\n'),
        );
      });
    });
  return member;
}
