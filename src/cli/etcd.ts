/**
 * `vigil etcd --config <file>`: runs and supervises this host's etcd member, configured by the
 * `etcd:` section of a Vigil config file (see examples/etcd/README.md).
 */
import { dirname } from 'node:path';
import { Command } from 'commander';
import { VigilError } from '../errors.js';
import { configOption, resolveConfigPath } from './config-location.js';

export function etcdCommand(): Command {
  return new Command('etcd')
    .description('run and supervise the local etcd member (mutual TLS when certificates are set)')
    .addOption(
      configOption('Vigil config file with an `etcd:` section (the agent config may hold it)'),
    )
    .option('--print-args', 'print the etcd command line and exit')
    .action(async (opts: { config?: string; printArgs?: boolean }) => {
      const o = { ...opts, config: resolveConfigPath(opts.config) };
      // Loaded when run, not at every `vigil` start (see bench/startup.ts).
      const [{ z }, { loadYamlFile }, member] = await Promise.all([
        import('zod'),
        import('../config/yaml-file.js'),
        import('../etcd/member.js'),
      ]);
      const { EtcdMemberConfigSchema, EtcdMemberSupervisor, checkEtcdBinary, etcdArgs } = member;
      const { resolveMemberPaths } = member;
      const FileSchema = z.looseObject({ etcd: EtcdMemberConfigSchema });
      const etcd = resolveMemberPaths(loadYamlFile(o.config, FileSchema).etcd, dirname(o.config));
      if (o.printArgs) {
        process.stdout.write([etcd.binary, ...etcdArgs(etcd)].join(' \\\n  ') + '\n');
        return;
      }
      const version = checkEtcdBinary(etcd.binary);
      const log = (m: string) => process.stderr.write(`vigil etcd: ${m}\n`);
      await new Promise<void>((resolve, reject) => {
        const member = new EtcdMemberSupervisor(etcd, {
          onStart: (pid) => log(`member ${etcd.name} (etcd ${version}) started, pid ${pid}`),
          onExit: (code, signal, restartIn) =>
            log(
              `member exited (${code ?? signal})` +
                (restartIn !== undefined ? `; restarting in ${restartIn} ms` : ''),
            ),
          onStartupFailure: (code, signal) => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            reject(
              new VigilError(
                'ETCD_START_FAILED',
                `etcd member ${etcd.name} exited at startup (${code ?? signal}); not restarting it`,
                `etcd's own error is printed above; fix the etcd: section of ${o.config} (relative paths are resolved against its directory) and start again`,
              ),
            );
          },
        });
        const stop = () => {
          log('stopping');
          void member.stop().then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        member.start();
      });
    });
}
