/** `vigil destroy`: tear the planned fleet down with Terraform, after the same preflight. */
import { Command } from 'commander';
import { preflight, runTerraform } from './apply.js';

export function destroyCommand(): Command {
  return new Command('destroy')
    .description('destroy every machine of the planned fleet with Terraform')
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .action(async (opts: { out: string; terraform?: string; autoApprove?: boolean }) => {
      const pf = preflight({
        out: opts.out,
        needSshAgent: false,
        ...(opts.terraform ? { terraform: opts.terraform } : {}),
      });
      await runTerraform(pf, ['init', '-input=false']);
      await runTerraform(pf, [
        'destroy',
        '-input=false',
        ...(opts.autoApprove ? ['-auto-approve'] : []),
      ]);
    });
}
