/**
 * Grafana on the monitor host, when the topology pins a Grafana release
 * (`monitoring.grafana`): the standalone tarball fetched by sha256 like every other artifact
 * (Debian and Ubuntu ship no Grafana package), Vigil's provisioned dashboards and datasource
 * (src/grafana, written on the host by the pinned Vigil release), and a grafana.ini that keeps it on loopback — operators reach it through an
 * SSH tunnel (`ssh -L 3000:127.0.0.1:3000 <monitor>`), so no firewall rule opens it.
 *
 * Configuration keys from Grafana's conf/defaults.ini ([paths] data/logs/plugins/provisioning,
 * [server] http_addr/http_port, [security] admin_user/admin_password,
 * [analytics] reporting_enabled/check_for_updates); the admin password is read with Grafana's
 * `$__file{}` expansion ("Variable expansion", grafana.com/docs/grafana/latest/setup-grafana/
 * configure-grafana), so it never appears in a rendered file.
 */
import { posix } from 'node:path';
import type { Artifact } from '../topology/schema.js';
import { artifactBinary, type UnitSpec } from './chains.js';

export const GRAFANA_USER = 'grafana';
export const GRAFANA_INSTALL_DIR = '/opt/grafana';
export const GRAFANA_INI_PATH = '/etc/grafana/grafana.ini';
export const GRAFANA_ADMIN_PASSWORD_PATH = '/etc/grafana/admin-password';
export const GRAFANA_DATA_DIR = '/var/lib/grafana';
export const GRAFANA_PORT = 3000;

/** The directory Grafana runs from: the tarball's top directory (holding bin/ and conf/). */
export function grafanaHome(a: Artifact): string {
  const binary = artifactBinary(a);
  const top = posix.dirname(posix.dirname(binary));
  return top === '.' ? GRAFANA_INSTALL_DIR : posix.join(GRAFANA_INSTALL_DIR, top);
}

export function grafanaIni(): string {
  return [
    '; Vigil monitor: Grafana with provisioned dashboards, on loopback only.',
    '[paths]',
    `data = ${GRAFANA_DATA_DIR}`,
    `logs = ${GRAFANA_DATA_DIR}/log`,
    `plugins = ${GRAFANA_DATA_DIR}/plugins`,
    'provisioning = /etc/grafana/provisioning',
    '',
    '[server]',
    'http_addr = 127.0.0.1',
    `http_port = ${GRAFANA_PORT}`,
    '',
    '[security]',
    'admin_user = admin',
    `admin_password = $__file{${GRAFANA_ADMIN_PASSWORD_PATH}}`,
    '',
    '[analytics]',
    // The fleet's monitor calls nobody: no usage reports, no update checks.
    'reporting_enabled = false',
    'check_for_updates = false',
    'check_for_plugin_updates = false',
    '',
    '[users]',
    'allow_sign_up = false',
    '',
  ].join('\n');
}

export function grafanaUnit(a: Artifact): UnitSpec {
  const home = grafanaHome(a);
  return {
    name: 'grafana.service',
    description: 'Grafana with Vigil dashboards (loopback only)',
    execStart: `${home}/bin/grafana server --homepath ${home} --config ${GRAFANA_INI_PATH}`,
    user: GRAFANA_USER,
    after: ['prometheus.service'],
    enable: true,
  };
}

/**
 * `vigil dashboards` on the monitor: writes the provisioned dashboards and datasource under
 * /etc/grafana (paths from src/grafana/provisioning.ts) with the pinned release's own code.
 */
export const GRAFANA_DASHBOARDS_ARGS = ['dashboards', '--out', '/etc'];

/**
 * First boot: a random admin password in a root-owned file only Grafana's group reads, made
 * on the host (never rendered), kept when it exists.
 */
export const GRAFANA_ADMIN_PASSWORD_COMMAND = [
  'sh',
  '-c',
  `umask 027; [ -s ${GRAFANA_ADMIN_PASSWORD_PATH} ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\\n' > ${GRAFANA_ADMIN_PASSWORD_PATH}; ` +
    `chown root:${GRAFANA_USER} ${GRAFANA_ADMIN_PASSWORD_PATH}; chmod 0640 ${GRAFANA_ADMIN_PASSWORD_PATH}; ` +
    `install -d -m 0750 -o ${GRAFANA_USER} -g ${GRAFANA_USER} ${GRAFANA_DATA_DIR}`,
];
