/** `vigil pki init|issue`: the etcd cluster's own CA and its member and agent certificates. */
import { Command, Option } from 'commander';
import type { CertKind } from '../etcd/pki.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function pkiCommand(): Command {
  const pki = new Command('pki').description(
    'certificates for mutual TLS between etcd members and Vigil agents',
  );
  pki
    .command('init')
    .description('create the cluster CA (ca.crt, ca.key with mode 0600) in --dir')
    .requiredOption('--dir <dir>', 'directory for the CA and issued certificates')
    .option('--cn <name>', 'CA common name', 'Vigil etcd CA')
    .option('--days <n>', 'validity in days', '3650')
    .action(async (o: { dir: string; cn: string; days: string }) => {
      const { initCa } = await import('../etcd/pki.js');
      const files = await initCa(o.dir, { commonName: o.cn, days: Number(o.days) });
      process.stdout.write(`CA certificate: ${files.cert}\nCA key (keep offline): ${files.key}\n`);
    });
  pki
    .command('issue')
    .description('issue <name>.crt/<name>.key signed by the CA in --dir')
    .requiredOption('--dir <dir>', 'directory holding ca.crt and ca.key')
    .requiredOption('--name <name>', 'certificate name (file name and CN)')
    .addOption(
      new Option('--kind <kind>', 'server and peer certs serve etcd members; client certs agents')
        .choices(['server', 'peer', 'client'])
        .default('server'),
    )
    .option('--ip <ip>', 'IP address the member is dialled at (repeatable)', collect, [])
    .option('--dns <name>', 'DNS name the member is dialled at (repeatable)', collect, [])
    .option('--days <n>', 'validity in days', '825')
    .option('--out <dir>', 'write the files here instead of --dir')
    .action(
      async (o: {
        dir: string;
        name: string;
        kind: CertKind;
        ip: string[];
        dns: string[];
        days: string;
        out?: string;
      }) => {
        const { issueCert } = await import('../etcd/pki.js');
        const files = await issueCert(o.dir, {
          name: o.name,
          kind: o.kind,
          ips: o.ip,
          dns: o.dns,
          days: Number(o.days),
          ...(o.out ? { outDir: o.out } : {}),
        });
        process.stdout.write(
          `certificate: ${files.cert}\nkey (0600): ${files.key}\nCA: ${files.ca}\n`,
        );
      },
    );
  return pki;
}
