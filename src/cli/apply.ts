/** `vigil apply`: create or update the planned fleet with Terraform, then push each host its bundle. */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { runTerraformVerb, type TerraformRunOptions } from '../provision/terraform.js';
import { applyLocalCommand, wantsLocal, type LocalOptions } from './local-fleet.js';

interface ApplyOptions extends TerraformRunOptions, LocalOptions {
  local?: boolean;
  push?: boolean;
  pushOnly?: boolean;
  hosts?: string;
  out: string;
}

/** After Terraform: every host (or --hosts) gets its bundle over SSH (src/provision/push.ts). */
async function applyCloud(opts: ApplyOptions): Promise<void> {
  const pf = opts.pushOnly ? undefined : await runTerraformVerb('apply', opts);
  if (opts.push === false) return;
  const [{ pushBundles, readManifest, bundleHosts, terraformAddresses }, { defaultDirs }] =
    await Promise.all([import('../provision/push.js'), import('../render/fleet.js')]);
  const terraform = pf?.terraform ?? opts.terraform ?? process.env.VIGIL_TERRAFORM ?? 'terraform';
  const addresses = terraformAddresses(terraform, resolve(opts.out, 'terraform'));
  const first = bundleHosts(opts.out)[0];
  // Known host keys live with the fleet's other state (default .vigil/<fleet>/state).
  const state =
    opts.state ?? (first ? defaultDirs(readManifest(opts.out, first).fleet).state : opts.out);
  const hosts = opts.hosts
    ?.split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const results = await pushBundles({
    out: opts.out,
    state,
    addresses,
    ...(hosts ? { hosts } : {}),
    log: (line) => process.stdout.write(line + '\n'),
  });
  const changed = results.filter((r) => r.changed.length > 0).map((r) => r.host);
  process.stdout.write(
    `vigil: pushed ${results.length} host(s); ` +
      (changed.length > 0 ? `changed: ${changed.join(', ')}\n` : 'every host was up to date\n'),
  );
}

export function applyCommand(): Command {
  return new Command('apply')
    .description(
      'create or update the planned fleet with Terraform (after checking the binary and every credential), then push each host its bundle over SSH',
    )
    .option('--out <dir>', 'the directory `vigil plan` wrote', '.')
    .option('--terraform <path>', 'terraform binary (default: VIGIL_TERRAFORM, then PATH)')
    .option('--auto-approve', 'do not ask terraform for confirmation')
    .option('--no-push', 'run Terraform only; do not push the bundles')
    .option('--push-only', 'skip Terraform; push the bundles to the machines it made')
    .option('--hosts <names>', 'push only to these hosts (comma-separated)')
    .argument('[topology]', 'topology YAML file (with --local, or all hosts `provider: local`)')
    .option(
      '--local',
      'run the planned fleet on this machine: one network namespace per host (root)',
    )
    .option(
      '--state <dir>',
      'the plan state directory: known host keys (default .vigil/<fleet>/state); with --local, the keys',
    )
    .option('--check', 'with --local: probe every flow the plan allows or forbids')
    .action(async (file: string | undefined, opts: ApplyOptions) =>
      (await wantsLocal(file, opts)) ? applyLocalCommand(file, opts) : applyCloud(opts),
    );
}
