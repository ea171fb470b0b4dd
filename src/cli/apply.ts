/** `vigil apply`: create or update the planned fleet with Terraform. */
import { Command } from 'commander';
import { runTerraformVerb, type TerraformRunOptions } from '../provision/terraform.js';

export function applyCommand(): Command {
  return new Command('apply')
    .description(
      'create or update the planned fleet with Terraform (after checking the binary and every credential)',
    )
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .action((opts: TerraformRunOptions) => runTerraformVerb('apply', opts));
}
