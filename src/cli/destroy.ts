/** `vigil destroy`: tear the planned fleet down with Terraform, after the same preflight. */
import { Command } from 'commander';
import { runTerraformVerb, type TerraformRunOptions } from '../provision/terraform.js';

export function destroyCommand(): Command {
  return new Command('destroy')
    .description('destroy every machine of the planned fleet with Terraform')
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .action((opts: TerraformRunOptions) => runTerraformVerb('destroy', opts));
}
