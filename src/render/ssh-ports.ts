/**
 * The SSH ports each host's sshd listens on, kept in the state directory (ssh-ports.json) so a
 * change of `ssh.port` never locks the operator out. A host is recorded with the topology's
 * port when first planned (its user data seeds sshd on it), and with the ports its bundle
 * configured each time `vigil apply` pushes it. While the recorded ports differ from the
 * topology's, the bundle keeps sshd and every firewall on both the new port and the recorded
 * ones, and the push tries the new port first, then the recorded ones; once a push has gone
 * through, the host is recorded as listening on the new port too, and the next plan closes
 * the old ones. So a port change takes two `vigil plan` + `vigil apply` rounds to finish.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { VigilError, errorMessage } from '../errors.js';

export const SSH_PORTS_FILE = 'ssh-ports.json';

const SshPortsSchema = z.strictObject({
  hosts: z.record(z.string(), z.array(z.number().int().min(1).max(65535)).min(1)),
});

export function readSshPorts(stateDir: string): Map<string, number[]> {
  const file = join(stateDir, SSH_PORTS_FILE);
  if (!existsSync(file)) return new Map();
  try {
    return new Map(
      Object.entries(SshPortsSchema.parse(JSON.parse(readFileSync(file, 'utf8'))).hosts),
    );
  } catch (err) {
    throw new VigilError(
      'STATE_INVALID',
      `cannot read ${file}: ${errorMessage(err)}`,
      `restore it from a backup of the state directory, or delete it if every host listens on the topology's ssh.port`,
    );
  }
}

/** Records these hosts' ports (others are kept as they were). */
export function recordSshPorts(
  stateDir: string,
  ports: ReadonlyMap<string, readonly number[]>,
): void {
  const all = readSshPorts(stateDir);
  let changed = false;
  for (const [host, p] of ports) {
    const sorted = [...new Set(p)].sort((a, b) => a - b);
    if (JSON.stringify(all.get(host)) !== JSON.stringify(sorted)) changed = true;
    all.set(host, sorted);
  }
  if (!changed) return;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, SSH_PORTS_FILE);
  const sortedHosts = Object.fromEntries([...all.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  writeFileSync(`${file}.tmp`, JSON.stringify({ hosts: sortedHosts }, null, 2) + '\n', {
    mode: 0o600,
  });
  renameSync(`${file}.tmp`, file);
}

/**
 * The ports a host's sshd must listen on in this plan: the topology's first, then any port
 * the host is recorded as listening on that is not the topology's (so the next push still
 * reaches it there, and it stays open until a push on the new port is recorded).
 */
export function sshPortsFor(port: number, recorded: readonly number[] | undefined): number[] {
  if (!recorded || recorded.includes(port)) return [port];
  return [port, ...recorded.filter((p) => p !== port)];
}
