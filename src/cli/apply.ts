/** `vigil apply`: create or update the planned fleet with Terraform. */
import { Command } from 'commander';
import { runTerraformVerb, type TerraformRunOptions } from '../provision/terraform.js';
import { applyLocalCommand, wantsLocal, type LocalOptions } from './local-fleet.js';

export function applyCommand(): Command {
  return new Command('apply')
    .description(
      'create or update the planned fleet with Terraform (after checking the binary and every credential)',
    )
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .argument('[topology]', 'topology YAML file (with --local, or all hosts `provider: local`)')
    .option(
      '--local',
      'run the planned fleet on this machine: one network namespace per host (root)',
    )
    .option(
      '--state <dir>',
      'the plan state directory (with --local; default .vigil/<fleet>/state)',
    )
    .option('--check', 'with --local: probe every flow the plan allows or forbids')
    .action(
      async (
        file: string | undefined,
        opts: TerraformRunOptions & LocalOptions & { local?: boolean },
      ) =>
        (await wantsLocal(file, opts))
          ? applyLocalCommand(file, opts)
          : runTerraformVerb('apply', opts),
    );
}
