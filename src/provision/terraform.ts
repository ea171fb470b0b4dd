/**
 * Running Terraform on a rendered plan: check everything it will need up front (binary,
 * version, each provider's credentials, an SSH agent) and report all of it in one message,
 * then run it in the plan's terraform/ directory with its output streamed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { VigilError, errorMessage } from '../errors.js';

export const MIN_TERRAFORM = [1, 5, 0] as const;

/** Each provider's accepted credential sets: any one complete set is enough. */
export const PROVIDER_CREDENTIALS: Record<string, readonly (readonly string[])[]> = {
  digitalocean: [['DIGITALOCEAN_TOKEN'], ['DIGITALOCEAN_ACCESS_TOKEN']],
  hcloud: [['HCLOUD_TOKEN']],
  vultr: [['VULTR_API_KEY']],
  linode: [['LINODE_TOKEN']],
  aws: [['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], ['AWS_PROFILE']],
  google: [['GOOGLE_CREDENTIALS'], ['GOOGLE_APPLICATION_CREDENTIALS']],
  upcloud: [['UPCLOUD_USERNAME', 'UPCLOUD_PASSWORD'], ['UPCLOUD_TOKEN']],
  ovh: [['OVH_ENDPOINT', 'OVH_APPLICATION_KEY', 'OVH_APPLICATION_SECRET', 'OVH_CONSUMER_KEY']],
};

export interface PreflightOptions {
  readonly out: string;
  readonly terraform?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Destroy needs no SSH agent: nothing is provisioned over SSH. */
  readonly needSshAgent?: boolean;
}

export interface Preflight {
  readonly terraform: string;
  readonly version: string;
  readonly dir: string;
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function parseVersion(v: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v.trim());
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

export function versionAtLeast(v: readonly number[], min: readonly number[]): boolean {
  for (let i = 0; i < min.length; i++) {
    if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) > min[i]!;
  }
  return true;
}

/** Every problem found, in one list; throws one error naming them all. */
export function preflight(opts: PreflightOptions): Preflight {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const dir = resolve(opts.out, 'terraform');
  const tfFile = join(dir, 'main.tf.json');

  const requested = opts.terraform ?? env.VIGIL_TERRAFORM;
  let terraform: string | undefined;
  let version = '';
  if (requested) {
    try {
      accessSync(requested, constants.X_OK);
      terraform = requested;
    } catch {
      problems.push(
        `terraform binary ${requested} does not exist or is not executable` +
          (opts.terraform ? ' (from --terraform)' : ' (from VIGIL_TERRAFORM)'),
      );
    }
  } else {
    terraform = findOnPath('terraform', env);
    if (!terraform)
      problems.push(
        'terraform is not on PATH: install Terraform >= 1.5 or point --terraform / VIGIL_TERRAFORM at it',
      );
  }
  if (terraform) {
    const r = spawnSync(terraform, ['version', '-json'], { encoding: 'utf8', env });
    let parsed: number[] | undefined;
    if (r.status === 0) {
      try {
        version = String(
          (JSON.parse(r.stdout) as { terraform_version?: unknown }).terraform_version,
        );
        parsed = parseVersion(version);
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed)
      problems.push(
        `${terraform} did not report its version (${r.error ? errorMessage(r.error) : (r.stderr || r.stdout).trim().split('\n')[0]})`,
      );
    else if (!versionAtLeast(parsed, MIN_TERRAFORM))
      problems.push(`terraform ${version} is too old: Vigil needs >= ${MIN_TERRAFORM.join('.')}`);
  }

  let providers: string[] = [];
  if (!existsSync(tfFile)) {
    problems.push(
      `${tfFile} does not exist: run \`vigil plan <topology> --out ${opts.out}\` first`,
    );
  } else {
    try {
      const doc = JSON.parse(readFileSync(tfFile, 'utf8')) as {
        terraform?: { required_providers?: Record<string, unknown> };
      };
      providers = Object.keys(doc.terraform?.required_providers ?? {}).sort();
    } catch (err) {
      problems.push(`${tfFile} is not valid JSON: ${errorMessage(err)}`);
    }
  }
  for (const p of providers) {
    const sets = PROVIDER_CREDENTIALS[p];
    if (!sets) continue;
    if (sets.some((set) => set.every((v) => (env[v] ?? '') !== ''))) continue;
    const missing = sets[0]!.filter((v) => (env[v] ?? '') === '');
    const alternatives = sets.slice(1).map((s) => s.join(' + '));
    problems.push(
      `${p} credentials missing: set ${missing.join(', ')}` +
        (alternatives.length > 0 ? ` (or ${alternatives.join(', or ')})` : ''),
    );
  }
  if (opts.needSshAgent !== false && providers.length > 0 && !env.SSH_AUTH_SOCK)
    problems.push(
      'no SSH agent (SSH_AUTH_SOCK unset): Terraform sets WireGuard endpoints over SSH with your agent; run ssh-agent and ssh-add your key',
    );

  if (problems.length > 0)
    throw new VigilError(
      'PREFLIGHT_FAILED',
      `cannot run terraform yet; ${problems.length} thing(s) to fix:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
  return { terraform: terraform!, version, dir };
}

/** Runs terraform with its output streamed to ours; rejects on a non-zero exit. */
export function runTerraform(pf: Preflight, args: string[]): Promise<void> {
  process.stdout.write(`vigil: terraform ${args.join(' ')} (in ${pf.dir})\n`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(pf.terraform, args, { cwd: pf.dir, stdio: 'inherit' });
    child.on('error', (err) =>
      reject(new VigilError('TERRAFORM_FAILED', `cannot start ${pf.terraform}: ${err.message}`)),
    );
    child.on('exit', (code, signal) => {
      if (code === 0) resolvePromise();
      else
        reject(
          new VigilError(
            'TERRAFORM_FAILED',
            `terraform ${args[0]} ${signal ? `was killed by ${signal}` : `exited with ${code}`}`,
            "read terraform's output above; state is kept locally in the terraform directory",
          ),
        );
    });
  });
}

export type TerraformVerb = 'apply' | 'destroy';

export interface TerraformRunOptions {
  readonly out: string;
  readonly terraform?: string;
  readonly autoApprove?: boolean;
}

/** Preflight, `terraform init`, then `terraform apply|destroy`. */
export async function runTerraformVerb(
  verb: TerraformVerb,
  opts: TerraformRunOptions,
): Promise<void> {
  const pf = preflight({
    out: opts.out,
    // Destroy provisions nothing over SSH.
    needSshAgent: verb === 'apply',
    ...(opts.terraform ? { terraform: opts.terraform } : {}),
  });
  process.stdout.write(`vigil: terraform ${pf.version} at ${pf.terraform}\n`);
  await runTerraform(pf, ['init', '-input=false']);
  await runTerraform(pf, [verb, '-input=false', ...(opts.autoApprove ? ['-auto-approve'] : [])]);
}
