/** `vigil destroy`: tear the planned fleet down with Terraform, after the same preflight. */
import { Command } from 'commander';
import { runTerraformVerb, type TerraformRunOptions } from '../provision/terraform.js';
import { destroyLocalCommand, wantsLocal, type LocalOptions } from './local-fleet.js';

export function destroyCommand(): Command {
  return new Command('destroy')
    .description('destroy every machine of the planned fleet with Terraform')
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .argument('[topology]', 'topology YAML file (with --local, or all hosts `provider: local`)')
    .option('--local', 'remove the local fleet: exactly what its run record lists')
    .option(
      '--state <dir>',
      'the plan state directory (with --local; default .vigil/<fleet>/state)',
    )
    .action(
      async (
        file: string | undefined,
        opts: TerraformRunOptions & LocalOptions & { local?: boolean },
      ) =>
        (await wantsLocal(file, opts))
          ? destroyLocalCommand(file, opts)
          : runTerraformVerb('destroy', opts).then(() => undefined),
    );
}
