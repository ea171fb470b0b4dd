/** The plan/apply/destroy commands as an operator runs them (the real CLI, spawned). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENTRY } from '../helpers/paths.js';
import { removeDir, tempDir } from './helpers.js';

let root = '';
before(() => {
  root = tempDir('cli');
});
after(() => removeDir(root));

const CREDS = {
  DIGITALOCEAN_TOKEN: 't',
  HCLOUD_TOKEN: 't',
  VULTR_API_KEY: 't',
  LINODE_TOKEN: 't',
  SSH_AUTH_SOCK: '/tmp/agent.sock',
};
function vigil(args: string[], env: Record<string, string | undefined> = {}) {
  const base: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(base))
    if (/TOKEN|API_KEY|AWS_|GOOGLE_|UPCLOUD_|OVH_|SSH_AUTH_SOCK|VIGIL_TERRAFORM/.test(k))
      delete base[k];
  return spawnSync(process.execPath, [CLI_ENTRY, ...args], {
    encoding: 'utf8',
    env: { ...base, ...env },
  });
}

test('vigil plan renders an example, prints the summary and exits 0', () => {
  const out = join(root, 'cosmos');
  const r = vigil([
    'plan',
    'examples/topologies/cosmos-sentries.yaml',
    '--out',
    out,
    '--state',
    join(root, 'cosmos-state'),
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Hosts by provider and region:/);
  assert.match(r.stdout, /hetzner\s+fsn1\s+validator/);
  assert.match(r.stdout, /Open ports by role:/);
  assert.match(r.stdout, /Estimated monthly cost: \d+\.\d\d USD/);
  assert.ok(existsSync(join(out, 'terraform', 'main.tf.json')));
  assert.ok(existsSync(join(out, 'hosts', 'validator', 'cloud-init.yaml')));
});

test('vigil plan exits non-zero on lint errors and renders nothing', () => {
  const file = join(root, 'bad.yaml');
  writeFileSync(
    file,
    // Drop two of the three sentries: the validator then sits behind only one.
    readFileSync('examples/topologies/cosmos-sentries.yaml', 'utf8')
      .replace(/ {2}- name: sentry-vultr\n[\s\S]*?size: vhf-4c-16gb\n/, '')
      .replace(/ {2}- name: sentry-linode\n[\s\S]*?size: g6-dedicated-4\n/, ''),
  );
  const out = join(root, 'bad-out');
  const r = vigil(['plan', file, '--out', out, '--state', join(root, 'bad-state')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error \[cometbft-sentry-count\] chains\[0\]: hub has 1 sentry/);
  assert.match(r.stderr, /LINT_FAILED/);
  assert.ok(!existsSync(out));
  assert.ok(!existsSync(join(root, 'bad-state')), 'no keys are made for a fleet that fails lint');
});

test('vigil apply without terraform fails up front with one message listing everything', () => {
  const out = join(root, 'cosmos-apply');
  assert.equal(
    vigil([
      'plan',
      'examples/topologies/cosmos-sentries.yaml',
      '--out',
      out,
      '--state',
      join(root, 's2'),
    ]).status,
    0,
  );
  const r = vigil(['apply', '--out', out, '--terraform', '/nonexistent']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /PREFLIGHT_FAILED/);
  assert.match(
    r.stderr,
    /terraform binary \/nonexistent does not exist or is not executable \(from --terraform\)/,
  );
  for (const v of [
    'DIGITALOCEAN_TOKEN',
    'HCLOUD_TOKEN',
    'VULTR_API_KEY',
    'LINODE_TOKEN',
    'SSH_AUTH_SOCK',
  ])
    assert.match(r.stderr, new RegExp(v));
  assert.doesNotMatch(r.stderr, /AWS_ACCESS_KEY_ID/, 'only providers the fleet uses are checked');
  assert.equal((r.stderr.match(/vigil: error/g) ?? []).length, 1, 'one message');
  // VIGIL_TERRAFORM is honoured the same way.
  const e = vigil(['apply', '--out', out], { ...CREDS, VIGIL_TERRAFORM: '/nonexistent/terraform' });
  assert.match(e.stderr, /\/nonexistent\/terraform .*\(from VIGIL_TERRAFORM\)/);
  assert.doesNotMatch(e.stderr, /credentials missing/);
});

test('vigil apply refuses a terraform that is too old, then runs init and apply in terraform/', () => {
  const out = join(root, 'cosmos-run');
  // The example's checksums are placeholders, which apply refuses: pin them for this run.
  const pinned = join(root, 'cosmos-pinned.yaml');
  writeFileSync(
    pinned,
    readFileSync('examples/topologies/cosmos-sentries.yaml', 'utf8').replace(
      /0{64}/g,
      'b'.repeat(64),
    ),
  );
  assert.equal(vigil(['plan', pinned, '--out', out, '--state', join(root, 's3')]).status, 0);
  const log = join(root, 'tf.log');
  const fake = (version: string) => {
    const path = join(root, `terraform-${version}`);
    writeFileSync(
      path,
      `#!/bin/sh\nif [ "$1" = version ]; then echo '{"terraform_version":"${version}"}'; exit 0; fi\necho "$(pwd) $*" >> ${log}\necho "fake terraform $1 done"\n`,
    );
    chmodSync(path, 0o755);
    return path;
  };
  const old = vigil(['apply', '--out', out, '--terraform', fake('1.3.9')], CREDS);
  assert.equal(old.status, 1);
  assert.match(old.stderr, /terraform 1\.3\.9 is too old: Vigil needs >= 1\.5\.0/);
  // Terraform only: the push over SSH has its own test (test/provision/push.test.ts).
  const ok = vigil(
    ['apply', '--out', out, '--terraform', fake('1.9.8'), '--auto-approve', '--no-push'],
    CREDS,
  );
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /fake terraform apply done/);
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  assert.deepEqual(calls, [
    `${join(out, 'terraform')} init -input=false`,
    `${join(out, 'terraform')} apply -input=false -auto-approve`,
  ]);
  const d = vigil(['destroy', '--out', out, '--terraform', fake('1.9.8')], {
    ...CREDS,
    SSH_AUTH_SOCK: undefined,
  });
  assert.equal(d.status, 0, d.stderr);
  assert.match(readFileSync(log, 'utf8'), /destroy -input=false\n$/);
});

test('vigil apply refuses placeholder checksums that plan only warns about; destroy does not', () => {
  const out = join(root, 'cosmos-placeholder');
  const plan = vigil([
    'plan',
    'examples/topologies/cosmos-sentries.yaml',
    '--out',
    out,
    '--state',
    join(root, 's4'),
  ]);
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stderr + plan.stdout, /warning \[artifact-placeholder\]/);
  const tf = join(root, 'terraform-ok');
  writeFileSync(tf, `#!/bin/sh\necho '{"terraform_version":"1.9.8"}'\n`);
  chmodSync(tf, 0o755);
  const r = vigil(['apply', '--out', out, '--terraform', tf, '--auto-approve'], CREDS);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /PREFLIGHT_FAILED/);
  assert.match(r.stderr, /\[artifact-placeholder\] vigil\.agent\.sha256: placeholder checksum/);
  assert.match(r.stderr, /\[artifact-placeholder\] chains\[0\]\.binary\.sha256/);
  assert.doesNotMatch(r.stdout, /terraform init/);
  const d = vigil(['destroy', '--out', out, '--terraform', tf, '--auto-approve'], CREDS);
  assert.doesNotMatch(d.stderr, /artifact-placeholder/);
});

test('the real terraform binary passes preflight version checks when installed', () => {
  const r = spawnSync('terraform', ['version', '-json'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) {
    console.error('\n*** SKIPPING real terraform version check: terraform is not installed ***\n');
    return;
  }
  const v = (JSON.parse(r.stdout) as { terraform_version: string }).terraform_version;
  assert.match(v, /^\d+\.\d+\.\d+/);
});

test('vigil plan --json, --rules and --json-schema without a topology', () => {
  const r = vigil([
    'plan',
    'examples/topologies/decred-solo.yaml',
    '--json',
    '--out',
    join(root, 'dcr'),
    '--state',
    join(root, 'dcr-state'),
  ]);
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as {
    ok: boolean;
    findings: Array<{ code: string; severity: string }>;
    summary: { monthlyCost: { total: number } };
  };
  assert.equal(doc.ok, true);
  assert.ok(
    doc.findings.every(
      (f) =>
        f.severity === 'warning' &&
        // placeholder checksums, and volumes attached for unchecked plan disk figures
        (f.code === 'artifact-placeholder' || f.code === 'disk-size'),
    ),
  );
  assert.ok(doc.summary.monthlyCost.total > 0);
  const rules = vigil(['plan', '--rules']);
  assert.equal(rules.status, 0);
  assert.match(rules.stdout, /^guard-region-quorum\s+losing any one region/m);
  const schemaFile = join(root, 'editor', 'topology.schema.json');
  const s = vigil(['plan', '--json-schema', schemaFile]);
  assert.equal(s.status, 0, s.stderr);
  assert.ok((JSON.parse(readFileSync(schemaFile, 'utf8')) as { properties: object }).properties);
});
