/**
 * `vigil registry …`: run a node registry validator or peer, submit this node's record, read
 * records, show the validator set (issue 15, item 6). The node's config file is described in
 * src/registry/config.ts and examples/registry/.
 *
 * `get` and `list` read a running node's view through its HTTP listener (`http:` in the
 * config, or `--url`): the running node owns the view and its DHT lookups, so a `get` for a
 * record the view lacks is answered from the DHT as the node sees it, and the same command
 * works against any node the operator can reach, not only one on this host.
 */
import { Command, Option } from 'commander';
import { VigilError, errorMessage } from '../errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

async function loadConfig(file: string) {
  const { loadRegistryConfig } = await import('../registry/config.js');
  return loadRegistryConfig(file);
}

function configOption(): Option {
  return new Option(
    '-c, --config <file>',
    'registry node configuration (YAML)',
  ).makeOptionMandatory();
}

/** The base URL of a node's read API: `--url`, else the config's `http:` listener. */
async function nodeUrl(opts: { config?: string; url?: string }): Promise<string> {
  if (opts.url) return opts.url.replace(/\/+$/, '');
  if (!opts.config)
    throw new VigilError(
      'REGISTRY_NO_NODE',
      'name the node to ask',
      'pass --config <file> or --url <http://host:port>',
    );
  const [c, { httpUrlOf }] = await Promise.all([
    loadConfig(opts.config),
    import('../registry/config.js'),
  ]);
  const url = httpUrlOf(c);
  if (!url)
    throw new VigilError(
      'REGISTRY_NO_NODE',
      `${opts.config} has no http: listener to read the node's view from`,
      'add http: { host: 127.0.0.1, port: <port> } to it and restart the node, or pass --url',
    );
  return url;
}

async function readApi(base: string, path: string): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new VigilError(
      'REGISTRY_NODE_UNREACHABLE',
      `cannot reach the registry node at ${base}: ${errorMessage((err as Error).cause ?? err)}`,
      'is `vigil registry run` running with this config?',
    );
  }
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

interface RecordJson {
  peerId: string;
  seq: string;
  role: string;
  capabilities: string[];
  addresses: string[];
  flags: number;
  issuedAt: string;
  expiresAt: string;
  countersignedBy: string[];
  quorum: number;
  acceptedAt?: string;
}

function formatRecord(r: RecordJson): string {
  return [
    `peer id:       ${r.peerId}`,
    `seq:           ${r.seq}`,
    `role:          ${r.role}`,
    `capabilities:  ${r.capabilities.join(', ') || '(none)'}`,
    `addresses:     ${r.addresses.join(' ') || '(none)'}`,
    `flags:         ${r.flags}`,
    `issued at:     ${r.issuedAt}`,
    `expires at:    ${r.expiresAt}`,
    `countersigned: ${r.countersignedBy.length} of quorum ${r.quorum}`,
    ...r.countersignedBy.map((v) => `  ${v}`),
  ].join('\n');
}

function runCommand(): Command {
  return new Command('run')
    .description('run a registry validator or peer node until SIGTERM or SIGINT')
    .addOption(configOption())
    .action(async (opts: { config: string }) => {
      const [c, { startRegistryNodeFromConfig }, { createAgentLogger }] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/daemon.js'),
        import('../agent/log-format.js'),
      ]);
      const logger = createAgentLogger({
        level: c.log.level,
        format: c.log.format,
        base: { registry: c.role },
      });
      // Signals are caught from before the start, as the agent does: a signal during the start
      // waits for it, then stops cleanly.
      let signalled: string | undefined;
      let onSignal: (signal: string) => void = (signal) => {
        signalled ??= signal;
      };
      process.once('SIGINT', () => onSignal('SIGINT'));
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      const running = await startRegistryNodeFromConfig(c, logger);
      logger.info(
        {
          peerId: running.node.peerId,
          addresses: running.node.addresses,
          ...(running.http ? { http: running.http.url } : {}),
          validators: c.validators.members.length,
        },
        `registry ${c.role} started`,
      );
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping');
          running.stop().then(
            () => {
              logger.info('stopped');
              resolve();
            },
            (err) => {
              logger.error({ err }, 'error while stopping');
              resolve();
            },
          );
        };
        if (signalled !== undefined) stop(signalled);
        else onSignal = stop;
      });
    });
}

function initCommand(): Command {
  return new Command('init')
    .description(
      'create the registry store a validator config names (the SQLite file, or the store identity under the etcd prefix); does nothing to one that exists',
    )
    .addOption(configOption())
    .action(async (opts: { config: string }) => {
      const [c, { initRegistryStore }] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/daemon.js'),
      ]);
      process.stdout.write(`${await initRegistryStore(c)}\n`);
    });
}

function submitCommand(): Command {
  return new Command('submit')
    .description(
      "sign this node's own record (from its config, with these overrides) and submit it to a validator; prints the committed sequence number",
    )
    .addOption(configOption())
    .option('--role <role>', 'the role in the record (default: record.role of the config)')
    .option(
      '--address <multiaddr>',
      'an address in the record (repeatable; replaces record.addresses)',
      collect,
    )
    .option(
      '--capability <name>',
      'a capability in the record (repeatable; replaces record.capabilities)',
      collect,
    )
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        config: string;
        role?: string;
        address?: string[];
        capability?: string[];
        json?: boolean;
      }) => {
        const [c, { submitOwnRecord }] = await Promise.all([
          loadConfig(opts.config),
          import('../registry/daemon.js'),
        ]);
        const r = await submitOwnRecord(c, {
          ...(opts.role !== undefined ? { role: opts.role } : {}),
          ...(opts.address ? { addresses: opts.address } : {}),
          ...(opts.capability ? { capabilities: opts.capability } : {}),
        });
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ peerId: r.peerId, seq: r.seq.toString(), duplicate: r.duplicate, epoch: r.epoch.toString() })}\n`
            : `committed ${r.peerId} seq ${r.seq}${r.duplicate ? ' (already committed)' : ''}, validator-set epoch ${r.epoch}\n`,
        );
      },
    );
}

function getCommand(): Command {
  return new Command('get')
    .description(
      "print one node's record as a running registry node sees it (its view, else the DHT)",
    )
    .argument('<peer-id>', 'the node whose record to print')
    .addOption(
      new Option('-c, --config <file>', 'the config of the node to ask (its http: listener)'),
    )
    .option('--url <url>', "a registry node's HTTP listener, e.g. http://127.0.0.1:7901")
    .option('--json', 'print JSON')
    .action(async (peerId: string, opts: { config?: string; url?: string; json?: boolean }) => {
      const base = await nodeUrl(opts);
      const { status, body } = await readApi(
        base,
        `/registry/records/${encodeURIComponent(peerId)}`,
      );
      if (status !== 200) {
        const b = (body ?? {}) as { code?: string; message?: string };
        throw new VigilError(
          b.code ?? 'REGISTRY_NODE_ERROR',
          b.message ?? `HTTP ${status} from ${base}`,
        );
      }
      const r = body as RecordJson;
      process.stdout.write(opts.json ? `${JSON.stringify(r, null, 2)}\n` : `${formatRecord(r)}\n`);
    });
}

function listCommand(): Command {
  return new Command('list')
    .description("list every record in a running registry node's view")
    .addOption(
      new Option('-c, --config <file>', 'the config of the node to ask (its http: listener)'),
    )
    .option('--url <url>', "a registry node's HTTP listener, e.g. http://127.0.0.1:7901")
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; url?: string; json?: boolean }) => {
      const base = await nodeUrl(opts);
      const { status, body } = await readApi(base, '/registry/records');
      if (status !== 200 || !Array.isArray(body))
        throw new VigilError('REGISTRY_NODE_ERROR', `HTTP ${status} from ${base}/registry/records`);
      const records = body as RecordJson[];
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
        return;
      }
      if (records.length === 0) {
        process.stdout.write('no records\n');
        return;
      }
      const rows = records.map((r) => [
        r.peerId,
        r.seq,
        r.role,
        r.capabilities.join(',') || '-',
        `${r.countersignedBy.length}/${r.quorum}`,
        r.expiresAt,
      ]);
      const head = ['PEER ID', 'SEQ', 'ROLE', 'CAPABILITIES', 'SIGS/QUORUM', 'EXPIRES'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) =>
        cells
          .map((x, i) => x.padEnd(widths[i]!))
          .join('  ')
          .trimEnd();
      process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n');
    });
}

function validatorsCommand(): Command {
  return new Command('validators')
    .description(
      "show the current validator set (epoch, quorum; learned from the node's own HTTP listener if configured, else from the network, verified from the config's genesis set), and dial and ping each validator",
    )
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const [c, { probeValidators }] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/daemon.js'),
      ]);
      const { set, source, validators } = await probeValidators(c);
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              epoch: set.epoch.toString(),
              source,
              quorum: set.quorum,
              size: set.members.length,
              added: set.added,
              removed: set.removed,
              validators,
            },
            null,
            2,
          )}\n`,
        );
      } else {
        const lines = [
          `validator-set epoch ${set.epoch} (from ${source === 'config' ? 'the config: no node answered' : source === 'http' ? "this node's HTTP listener" : 'the network'}): ${set.members.length} validators, quorum ${set.quorum}`,
        ];
        if (set.added.length > 0)
          lines.push(`added since the genesis set: ${set.added.join(', ')}`);
        if (set.removed.length > 0) lines.push(`removed: ${set.removed.join(', ')}`);
        for (const v of validators)
          lines.push(
            v.reachable
              ? `  ${v.peerId}  reachable (${v.rttMs} ms) at ${v.address}`
              : `  ${v.peerId}  UNREACHABLE: ${v.error}`,
          );
        const up = validators.filter((v) => v.reachable).length;
        lines.push(
          `${up} of ${validators.length} reachable: ${up >= set.quorum ? 'a quorum' : 'NO QUORUM'}`,
        );
        process.stdout.write(lines.join('\n') + '\n');
      }
      if (validators.filter((v) => v.reachable).length < set.quorum) process.exitCode = 3;
    });
}

function idCommand(): Command {
  return new Command('id')
    .description(
      'print the libp2p peer id of an Ed25519 key file (create one with `vigil keys generate`)',
    )
    .requiredOption(
      '--key <file>',
      'priv_validator_key.json or a plain 32-byte seed file (mode 0600)',
    )
    .action(async (opts: { key: string }) => {
      const [{ loadEd25519KeyFile }, { peerIdFromEd25519 }] = await Promise.all([
        import('../keys/key-file.js'),
        import('../registry/peer-id.js'),
      ]);
      process.stdout.write(`${peerIdFromEd25519(loadEd25519KeyFile(opts.key).publicKey)}\n`);
    });
}

function setProposeCommand(): Command {
  return new Command('set-propose')
    .description(
      'write a proposal for the next validator set (the set committed in the store, with validators added or removed), for a quorum of the current validators to sign with set-sign',
    )
    .addOption(configOption())
    .option('--add <peer-id>', 'a validator to add (repeatable)', collect, [])
    .option('--remove <peer-id>', 'a validator to remove (repeatable)', collect, [])
    .option('--quorum <n>', 'countersignatures a record needs in the new set (default: a majority)')
    .requiredOption('--out <file>', 'where to write the proposal (JSON)')
    .action(
      async (opts: {
        config: string;
        add: string[];
        remove: string[];
        quorum?: string;
        out: string;
      }) => {
        const [c, admin] = await Promise.all([
          loadConfig(opts.config),
          import('../registry/set-admin.js'),
        ]);
        let quorum: number | undefined;
        if (opts.quorum !== undefined) {
          quorum = Number(opts.quorum);
          if (!Number.isInteger(quorum) || quorum < 1)
            throw new VigilError(
              'INVALID_INPUT',
              `--quorum ${opts.quorum} is not a positive integer`,
            );
        }
        if (opts.add.length === 0 && opts.remove.length === 0 && quorum === undefined)
          throw new VigilError(
            'INVALID_INPUT',
            'nothing to change',
            'pass --add, --remove or --quorum',
          );
        const p = await admin.proposeSetChange(c, {
          add: opts.add,
          remove: opts.remove,
          ...(quorum !== undefined ? { quorum } : {}),
        });
        admin.writeProposal(opts.out, p);
        process.stdout.write(
          `proposal for epoch ${p.body.epoch} written to ${opts.out}: ${p.body.members.length} validators, quorum ${p.body.quorum}\n`,
        );
      },
    );
}

function setSignCommand(): Command {
  return new Command('set-sign')
    .description(
      "add this validator's signature to a set proposal (checked against the set committed in the store)",
    )
    .addOption(configOption())
    .argument('<proposal>', 'the file set-propose wrote (updated in place)')
    .action(async (file: string, opts: { config: string }) => {
      const [c, admin, { peerIdFromEd25519 }] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/set-admin.js'),
        import('../registry/peer-id.js'),
      ]);
      const signed = await admin.signSetChange(c, admin.readProposal(file));
      admin.writeProposal(file, signed);
      process.stdout.write(
        [
          `signed the change to epoch ${signed.body.epoch} (quorum ${signed.body.quorum}):`,
          ...signed.body.members.map((m) => `  ${peerIdFromEd25519(m)}`),
          `${signed.signatures.length} signature(s) so far`,
        ].join('\n') + '\n',
      );
    });
}

function setCommitCommand(): Command {
  return new Command('set-commit')
    .description(
      'commit a signed set proposal through the registry store (needs a quorum of the current set); every node follows',
    )
    .addOption(configOption())
    .argument('<proposal>', 'the proposal, signed by a quorum with set-sign')
    .action(async (file: string, opts: { config: string }) => {
      const [c, admin] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/set-admin.js'),
      ]);
      const r = await admin.commitSetChange(c, admin.readProposal(file));
      process.stdout.write(
        `validator set epoch ${r.epoch} ${r.duplicate ? 'was already committed' : 'committed'}\n`,
      );
    });
}

function setShowCommand(): Command {
  return new Command('set-show')
    .description(
      'show the validator sets, epoch by epoch: from the store (validator config) or the node view (peer config)',
    )
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const [c, admin] = await Promise.all([
        loadConfig(opts.config),
        import('../registry/set-admin.js'),
      ]);
      const sets = await admin.showSets(c);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(sets, null, 2)}\n`);
        return;
      }
      const lines: string[] = [];
      for (const s of sets) {
        lines.push(
          `epoch ${s.epoch}: ${s.members.length} validators, quorum ${s.quorum}${s.issuedAt ? `, issued ${s.issuedAt}, signed by ${s.signedBy.length}` : ' (genesis: the config)'}`,
        );
        for (const m of s.members) lines.push(`  ${m}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}

export function registryCommand(): Command {
  return new Command('registry')
    .description(
      'the node registry: signed, validator-countersigned node records over libp2p (run, submit, get, list; validator-set changes)',
    )
    .addCommand(runCommand())
    .addCommand(initCommand())
    .addCommand(submitCommand())
    .addCommand(getCommand())
    .addCommand(listCommand())
    .addCommand(validatorsCommand())
    .addCommand(setProposeCommand())
    .addCommand(setSignCommand())
    .addCommand(setCommitCommand())
    .addCommand(setShowCommand())
    .addCommand(idCommand());
}
