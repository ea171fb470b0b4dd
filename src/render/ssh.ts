/**
 * The operator's SSH access: the user data seeds it on first boot, and every bundle carries it
 * (authorized keys, sshd's port and policy, the firewall's SSH sources), so a change of
 * `ssh.keys`, `ssh.port` or `ssh.allowFrom` reaches running hosts by `vigil apply` and never
 * forces a machine to be replaced (the machines ignore later changes of their user data).
 */
export const SSHD_CONFIG_PATH = '/etc/ssh/sshd_config.d/50-vigil.conf';
/** Root-owned keys file, the only one sshd reads once the bundle is in: a key taken out of the
 * topology stops working, which cloud-init's ~/.ssh/authorized_keys (never rewritten) would not. */
export const AUTHORIZED_KEYS_DIR = '/etc/ssh/vigil-authorized-keys';
export const SSHD_RELOAD_COMMAND = '/usr/local/sbin/vigil-sshd-reload';

export function sshdConfig(
  ports: readonly number[],
  user: string,
  opts: { authorizedKeysDir?: string } = {},
): string {
  return [
    '# Vigil SSH hardening: keys only, no root, one operator user.',
    ...ports.map((p) => `Port ${p}`),
    ...(opts.authorizedKeysDir ? [`AuthorizedKeysFile ${opts.authorizedKeysDir}/%u`] : []),
    'PermitRootLogin no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'AuthenticationMethods publickey',
    'X11Forwarding no',
    'AllowAgentForwarding no',
    'MaxAuthTries 3',
    `AllowUsers ${user}`,
    '',
  ].join('\n');
}

/**
 * Applies a changed sshd configuration: refused unless `sshd -t` accepts it (sshd keeps
 * running on its old configuration then, so the operator keeps the way in). Ubuntu 24.04
 * socket-activates sshd and a generator turns sshd's Port lines into ssh.socket's listeners,
 * hence daemon-reload and a restart of the socket; restarting ssh.service leaves open sessions
 * (the push's own included) alone, its KillMode being process.
 */
export const SSHD_RELOAD_SCRIPT = `#!/bin/sh
set -eu
sshd -t
systemctl daemon-reload
if systemctl is-enabled --quiet ssh.socket 2>/dev/null; then systemctl restart ssh.socket; fi
systemctl restart ssh
`;
