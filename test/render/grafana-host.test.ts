/** Grafana on the monitor host: the pinned release, Vigil's dashboards, no secret rendered. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { grafanaFiles } from '../../src/grafana/provisioning.js';
import { GRAFANA_ADMIN_PASSWORD_PATH, GRAFANA_DASHBOARDS_ARGS } from '../../src/render/grafana.js';
import { verifyUnits } from '../helpers/systemd-verify.js';
import { exampleNames, hostSetup, planExample, removeDir, tempDir } from './helpers.js';

const hostFile = (files: Map<string, string>, host: string, path: string): string | undefined =>
  files.get(`hosts/${host}/files/${path.replace(/^\//, '').replace(/\//g, '__')}`);

describe('Grafana on the monitor host', () => {
  let work: string;
  let files: Map<string, string>;
  before(() => {
    work = tempDir('grafana-host');
    files = planExample('cosmos-sentries', join(work, 'state')).files!;
  });
  after(() => removeDir(work));

  it('provisions every Vigil dashboard and the datasource where Grafana reads them', () => {
    const cloud = hostSetup(files, 'monitor');
    const write = cloud.runcmd.find(
      (c): c is string[] => Array.isArray(c) && c[1] === GRAFANA_DASHBOARDS_ARGS[0],
    );
    assert.ok(write, 'the monitor writes the dashboards with its pinned Vigil');
    assert.equal(write[0], '/opt/vigil/bin/vigil');
    // The same command here, into a scratch /etc: exactly the provisioned files, at the paths
    // the rendered grafana.ini and provider YAML name.
    const etc = join(work, 'etc');
    const r = spawnSync(
      process.execPath,
      ['bin/vigil.js', ...write.slice(1).map((a) => (a === '/etc' ? etc : a))],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    for (const [path, content] of grafanaFiles())
      assert.equal(readFileSync(join(etc, path), 'utf8'), content, path);
    const ini = hostFile(files, 'monitor', '/etc/grafana/grafana.ini')!;
    const provisioning = /^provisioning = (\S+)$/m.exec(ini)![1];
    assert.ok(existsSync(join(etc, provisioning.replace(/^\/etc\//, ''), 'dashboards/vigil.yaml')));
    assert.match(ini, /^http_addr = 127\.0\.0\.1$/m);
    assert.match(
      ini,
      new RegExp(`^admin_password = \\$__file\\{${GRAFANA_ADMIN_PASSWORD_PATH}\\}$`, 'm'),
    );
  });

  it('fetches the pinned release, makes the password on the host, then starts Grafana', () => {
    const cloud = hostSetup(files, 'monitor') as {
      runcmd: Array<string[] | string>;
      users: Array<{ name: string } | string>;
      write_files: Array<{ path: string; permissions: string; owner: string }>;
    };
    const index = (pred: (c: string[]) => boolean): number =>
      cloud.runcmd.findIndex((c) => Array.isArray(c) && pred(c));
    const fetch = index((c) => c[0] === '/usr/local/sbin/vigil-fetch' && c[3] === '/opt/grafana');
    const vigil = index((c) => c[0] === '/usr/local/sbin/vigil-fetch' && c[3] === '/opt/vigil');
    const password = index((c) => c.join(' ').includes(GRAFANA_ADMIN_PASSWORD_PATH));
    const dashboards = index((c) => c[1] === GRAFANA_DASHBOARDS_ARGS[0]);
    assert.ok(
      vigil >= 0 &&
        dashboards > vigil &&
        dashboards < index((c) => c.join(' ') === 'systemctl enable --now grafana.service'),
    );
    const start = index((c) => c.join(' ') === 'systemctl enable --now grafana.service');
    assert.ok(fetch >= 0 && password > fetch && start > password, JSON.stringify(cloud.runcmd));
    assert.ok(cloud.users.some((u) => typeof u === 'object' && u.name === 'grafana'));
    const ini = cloud.write_files.find((f) => f.path === '/etc/grafana/grafana.ini')!;
    assert.deepEqual([ini.permissions, ini.owner], ['0640', 'root:grafana']);
    // The password command is valid shell, and nothing rendered holds a password.
    const sh = cloud.runcmd[password] as string[];
    assert.equal(spawnSync('sh', ['-n', '-c', sh[2]]).status, 0);
    assert.equal(hostFile(files, 'monitor', GRAFANA_ADMIN_PASSWORD_PATH), undefined);
  });

  it('renders a unit systemd accepts', (t) => {
    const unit = hostFile(files, 'monitor', '/etc/systemd/system/grafana.service')!;
    assert.match(unit, /^User=grafana$/m);
    const exec = /^ExecStart=(\S+)/m.exec(unit)![1];
    const root = join(work, 'root');
    mkdirSync(join(root, exec, '..'), { recursive: true });
    writeFileSync(join(root, exec), '#!/bin/sh\n');
    chmodSync(join(root, exec), 0o755);
    const r = verifyUnits(root, { 'grafana.service': unit });
    if ('skipped' in r) return t.skip(r.skipped);
    assert.equal(r.status, 0, r.stderr);
  });

  it('is not rendered where the topology pins no Grafana', () => {
    for (const name of exampleNames().filter((n) => n !== 'cosmos-sentries')) {
      const other = planExample(name, join(work, `state-${name}`)).files!;
      for (const path of other.keys()) assert.doesNotMatch(path, /grafana/, `${name}: ${path}`);
    }
  });
});
