/**
 * Running Terraform on a rendered plan: check everything it will need up front (binary,
 * version, each provider's credentials, an SSH agent) and report all of it in one message,
 * then run it in the plan's terraform/ directory with its output streamed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { VigilError, errorMessage } from '../errors.js';

export const MIN_TERRAFORM = [1, 5, 0] as const;

/** Each provider's accepted credential sets: any one complete set is enough. */
export const PROVIDER_CREDENTIALS: Record<string, readonly (readonly string[])[]> = {
  digitalocean: [['DIGITALOCEAN_TOKEN'], ['DIGITALOCEAN_ACCESS_TOKEN']],
  hcloud: [['HCLOUD_TOKEN']],
  vultr: [['VULTR_API_KEY']],
  linode: [['LINODE_TOKEN']],
  // Besides these, AWS profiles and SSO in ~/.aws and GCP application-default credentials
  // are looked for on disk (awsCredentialsOnDisk, gcpCredentialsOnDisk).
  aws: [['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'], ['AWS_WEB_IDENTITY_TOKEN_FILE']],
  google: [['GOOGLE_CREDENTIALS'], ['GOOGLE_OAUTH_ACCESS_TOKEN']],
  upcloud: [['UPCLOUD_USERNAME', 'UPCLOUD_PASSWORD'], ['UPCLOUD_TOKEN']],
  ovh: [['OVH_ENDPOINT', 'OVH_APPLICATION_KEY', 'OVH_APPLICATION_SECRET', 'OVH_CONSUMER_KEY']],
};

/** Lint codes that `vigil apply` refuses even though `vigil plan` only warns about them: the
 * hosts would be paid for and then fail (a placeholder checksum never matches a download). */
export const APPLY_BLOCKING_CODES: readonly string[] = ['artifact-placeholder'];

/** The plan's lint findings, written next to the rendered files for apply to read. */
export const PLAN_FINDINGS_FILE = 'lint.json';

function homeOf(env: NodeJS.ProcessEnv): string {
  return env.HOME ?? homedir();
}

/** INI sections (`[name]`) and their keys, as the AWS CLI and SDKs read ~/.aws files. */
function iniSections(file: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return out;
  }
  let current: Set<string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) {
      current = new Set();
      out.set(section[1]!, current);
      continue;
    }
    const key = /^([A-Za-z0-9_.-]+)\s*=/.exec(line);
    if (key && current) current.add(key[1]!.toLowerCase());
  }
  return out;
}

/** Keys that make a profile usable: static keys, SSO, a credential process, or a role. */
const AWS_PROFILE_SOURCES = [
  'aws_access_key_id',
  'sso_session',
  'sso_start_url',
  'sso_account_id',
  'credential_process',
  'role_arn',
  'web_identity_token_file',
];

/**
 * Whether the AWS provider will find credentials in the shared files for the selected
 * profile (AWS_PROFILE, else AWS_DEFAULT_PROFILE, else `default`): undefined when it will,
 * otherwise why not.
 */
export function awsCredentialsOnDisk(env: NodeJS.ProcessEnv): string | undefined {
  const profile = env.AWS_PROFILE || env.AWS_DEFAULT_PROFILE || 'default';
  const credentials = env.AWS_SHARED_CREDENTIALS_FILE || join(homeOf(env), '.aws', 'credentials');
  const config = env.AWS_CONFIG_FILE || join(homeOf(env), '.aws', 'config');
  const fromCredentials = iniSections(credentials).get(profile);
  const configSections = iniSections(config);
  const fromConfig = configSections.get(
    profile === 'default' && configSections.has('default') ? 'default' : `profile ${profile}`,
  );
  const keys = new Set([...(fromCredentials ?? []), ...(fromConfig ?? [])]);
  if (AWS_PROFILE_SOURCES.some((k) => keys.has(k))) return undefined;
  if (fromCredentials || fromConfig)
    return `AWS profile ${profile} has no credentials (no keys, sso_*, credential_process or role_arn) in ${credentials} or ${config}`;
  return `no AWS profile ${profile} in ${credentials} or ${config}`;
}

/** Application-default credentials as `gcloud auth application-default login` writes them. */
export function gcpCredentialsOnDisk(env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (explicit) {
    return existsSync(explicit)
      ? undefined
      : `GOOGLE_APPLICATION_CREDENTIALS names ${explicit}, which does not exist`;
  }
  const adc = join(
    env.CLOUDSDK_CONFIG || join(homeOf(env), '.config', 'gcloud'),
    'application_default_credentials.json',
  );
  return existsSync(adc) ? undefined : `no application-default credentials at ${adc}`;
}

export interface PreflightOptions {
  readonly out: string;
  readonly terraform?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Destroy needs no SSH agent: nothing is provisioned over SSH. */
  readonly needSshAgent?: boolean;
  /** Apply refuses a plan whose lint found what would fail on the hosts; destroy does not. */
  readonly checkFindings?: boolean;
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
    const onDisk =
      p === 'aws' ? awsCredentialsOnDisk(env) : p === 'google' ? gcpCredentialsOnDisk(env) : '';
    if (onDisk === undefined) continue;
    const missing = sets[0]!.filter((v) => (env[v] ?? '') === '');
    const alternatives = sets.slice(1).map((s) => s.join(' + '));
    if (p === 'aws') alternatives.push('AWS_PROFILE naming a profile or SSO session in ~/.aws');
    if (p === 'google')
      alternatives.push(
        'GOOGLE_APPLICATION_CREDENTIALS, or `gcloud auth application-default login`',
      );
    problems.push(
      `${p} credentials missing: set ${missing.join(', ')}` +
        (alternatives.length > 0 ? ` (or ${alternatives.join(', or ')})` : '') +
        (onDisk ? `; ${onDisk}` : ''),
    );
  }
  if (opts.checkFindings) {
    const file = resolve(opts.out, PLAN_FINDINGS_FILE);
    let findings: Array<{ code?: unknown; path?: unknown; message?: unknown }> | undefined;
    try {
      findings = (JSON.parse(readFileSync(file, 'utf8')) as { findings?: typeof findings })
        .findings;
    } catch {
      findings = undefined;
    }
    if (!Array.isArray(findings))
      problems.push(
        `${file} is missing or damaged: re-run \`vigil plan\` so apply can see what lint found`,
      );
    else
      for (const f of findings)
        if (typeof f.code === 'string' && APPLY_BLOCKING_CODES.includes(f.code))
          problems.push(`[${f.code}] ${String(f.path)}: ${String(f.message)}`);
  }
  if (opts.needSshAgent !== false && providers.length > 0 && !env.SSH_AUTH_SOCK)
    problems.push(
      'no SSH agent (SSH_AUTH_SOCK unset): vigil apply pushes each host its bundle over SSH with your agent; run ssh-agent and ssh-add your key',
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
): Promise<Preflight> {
  const pf = preflight({
    out: opts.out,
    // Destroy provisions nothing over SSH, and must work on a fleet lint would now refuse.
    needSshAgent: verb === 'apply',
    checkFindings: verb === 'apply',
    ...(opts.terraform ? { terraform: opts.terraform } : {}),
  });
  process.stdout.write(`vigil: terraform ${pf.version} at ${pf.terraform}\n`);
  await runTerraform(pf, ['init', '-input=false']);
  await runTerraform(pf, [verb, '-input=false', ...(opts.autoApprove ? ['-auto-approve'] : [])]);
  return pf;
}
