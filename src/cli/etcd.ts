/**
 * `vigil etcd --config <file>`: runs and supervises this host's etcd member, configured by the
 * `etcd:` section of a Vigil config file (see examples/etcd/README.md).
 */
import { Command } from 'commander';
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml-file.js';
import {
  EtcdMemberConfigSchema,
  EtcdMemberSupervisor,
  checkEtcdBinary,
  etcdArgs,
} from '../etcd/member.js';

const FileSchema = z.looseObject({ etcd: EtcdMemberConfigSchema });

export function etcdCommand(): Command {
  return new Command('etcd')
    .description('run and supervise the local etcd member (mutual TLS when certificates are set)')
    .requiredOption('--config <file>', 'Vigil config file with an `etcd:` section')
    .option('--print-args', 'print the etcd command line and exit')
    .action(async (o: { config: string; printArgs?: boolean }) => {
      const { etcd } = loadYamlFile(o.config, FileSchema);
      if (o.printArgs) {
        process.stdout.write([etcd.binary, ...etcdArgs(etcd)].join(' \\\n  ') + '\n');
        return;
      }
      const version = checkEtcdBinary(etcd.binary);
      const log = (m: string) => process.stderr.write(`vigil etcd: ${m}\n`);
      const member = new EtcdMemberSupervisor(etcd, {
        onStart: (pid) => log(`member ${etcd.name} (etcd ${version}) started, pid ${pid}`),
        onExit: (code, signal, restartIn) =>
          log(
            `member exited (${code ?? signal})` +
              (restartIn !== undefined ? `; restarting in ${restartIn} ms` : ''),
          ),
      });
      member.start();
      await new Promise<void>((resolve) => {
        const stop = () => {
          log('stopping');
          void member.stop().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
