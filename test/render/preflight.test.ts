/**
 * The preflight's credential checks for providers whose credentials usually live on disk:
 * AWS profiles and SSO in ~/.aws, GCP application-default credentials. Each case runs with a
 * temporary HOME and nothing in the environment but what it sets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { preflight } from '../../src/provision/terraform.js';
import { VigilError } from '../../src/errors.js';
import { removeDir, tempDir } from './helpers.js';

let root = '';
let out = '';
let terraform = '';
before(() => {
  root = tempDir('preflight');
  out = join(root, 'plan');
  mkdirSync(join(out, 'terraform'), { recursive: true });
  writeFileSync(
    join(out, 'terraform', 'main.tf.json'),
    JSON.stringify({
      terraform: {
        required_providers: {
          aws: { source: 'hashicorp/aws', version: '~> 5.0' },
          google: { source: 'hashicorp/google', version: '~> 5.0' },
        },
      },
    }),
  );
  writeFileSync(join(out, 'lint.json'), JSON.stringify({ findings: [] }));
  terraform = join(root, 'terraform');
  writeFileSync(terraform, `#!/bin/sh\necho '{"terraform_version":"1.9.8"}'\n`);
  chmodSync(terraform, 0o755);
});
after(() => removeDir(root));

let n = 0;
/** A fresh HOME with the given files (paths relative to it). */
function home(files: Record<string, string>): string {
  const dir = join(root, `home-${n++}`);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The problems preflight reports (empty when it passes). */
function problems(env: NodeJS.ProcessEnv): string {
  try {
    preflight({ out, terraform, needSshAgent: false, checkFindings: true, env });
    return '';
  } catch (e) {
    assert.ok(e instanceof VigilError, String(e));
    return e.message;
  }
}

const ADC = '.config/gcloud/application_default_credentials.json';
const adcJson = JSON.stringify({ type: 'authorized_user', client_id: 'x' });

test('an AWS SSO profile in ~/.aws/config and GCP application-default credentials pass', () => {
  const HOME = home({
    '.aws/config': [
      '[profile ops]',
      'sso_session = corp',
      'sso_account_id = 111122223333',
      'sso_role_name = Admin',
      'region = eu-west-1',
      '[sso-session corp]',
      'sso_start_url = https://corp.awsapps.com/start',
      '',
    ].join('\n'),
    [ADC]: adcJson,
  });
  assert.equal(problems({ HOME, AWS_PROFILE: 'ops' }), '');
});

test('the default AWS profile in ~/.aws/credentials passes without AWS_PROFILE', () => {
  const HOME = home({
    '.aws/credentials': '[default]\naws_access_key_id = AKIA\naws_secret_access_key = s\n',
    [ADC]: adcJson,
  });
  assert.equal(problems({ HOME }), '');
});

test('GOOGLE_APPLICATION_CREDENTIALS naming an existing file passes; a missing one is named', () => {
  const HOME = home({
    '.aws/credentials': '[default]\naws_access_key_id = AKIA\n',
    'sa.json': '{}',
  });
  assert.equal(problems({ HOME, GOOGLE_APPLICATION_CREDENTIALS: join(HOME, 'sa.json') }), '');
  const p = problems({ HOME, GOOGLE_APPLICATION_CREDENTIALS: join(HOME, 'nope.json') });
  assert.match(p, /google credentials missing/);
  assert.match(p, /nope\.json, which does not exist/);
});

test('nothing on disk: both providers are reported, each with where it looked', () => {
  const HOME = home({});
  const p = problems({ HOME });
  assert.match(p, /aws credentials missing: set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY/);
  assert.match(p, new RegExp(`no AWS profile default in ${HOME}/\\.aws/credentials`));
  assert.match(p, /google credentials missing/);
  assert.match(p, new RegExp(`no application-default credentials at ${HOME}/\\.config/gcloud`));
});

test('an AWS_PROFILE that is not in ~/.aws, or has no credential source, is refused', () => {
  const HOME = home({ '.aws/config': '[profile bare]\nregion = eu-west-1\n', [ADC]: adcJson });
  assert.match(problems({ HOME, AWS_PROFILE: 'ghost' }), /no AWS profile ghost in/);
  assert.match(problems({ HOME, AWS_PROFILE: 'bare' }), /AWS profile bare has no credentials/);
});

test('a plan with a placeholder checksum is refused; a missing lint.json asks for a re-plan', () => {
  const HOME = home({ '.aws/credentials': '[default]\naws_access_key_id = A\n', [ADC]: adcJson });
  writeFileSync(
    join(out, 'lint.json'),
    JSON.stringify({
      findings: [
        { code: 'monitor-missing', severity: 'warning', path: 'hosts', message: 'm' },
        {
          code: 'artifact-placeholder',
          severity: 'warning',
          path: 'vigil.agent.sha256',
          message: 'x',
        },
      ],
    }),
  );
  try {
    const p = problems({ HOME });
    assert.match(p, /\[artifact-placeholder\] vigil\.agent\.sha256: x/);
    assert.doesNotMatch(p, /monitor-missing/);
    writeFileSync(join(out, 'lint.json'), 'not json');
    assert.match(problems({ HOME }), /lint\.json is missing or damaged: re-run `vigil plan`/);
  } finally {
    writeFileSync(join(out, 'lint.json'), JSON.stringify({ findings: [] }));
  }
});
