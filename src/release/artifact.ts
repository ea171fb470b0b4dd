/**
 * The release artifact's rules, apart from the I/O that builds it (build.ts): its name, what
 * goes in, the launcher that runs the bundled Node, and the manifest that says what it holds.
 *
 * Why a tarball with a pinned Node runtime (and not a `.deb` or a single executable): Vigil
 * loads one native addon (better-sqlite3), which Node's single-executable applications cannot
 * embed; a `.deb` would tie the fleet to Debian's package tooling while the hosts only need
 * `tar` and `sha256sum`, which cloud images already have and which `vigil-fetch` already uses
 * for every other pinned artifact. One tarball, one sha256, one directory per version.
 */
import { InputError } from '../errors.js';

export interface ReleaseTarget {
  readonly version: string;
  readonly platform: 'linux';
  readonly arch: 'x64' | 'arm64';
}

/** `vigil-0.1.0-linux-x64`: the tarball's base name and the single top directory inside it. */
export function releaseName(t: ReleaseTarget): string {
  return `vigil-${t.version}-${t.platform}-${t.arch}`;
}

/** The executable inside the tarball, as a topology's `vigil.agent.binary` names it. */
export function releaseBinary(t: ReleaseTarget): string {
  return `${releaseName(t)}/bin/vigil`;
}

/** Node's `process.arch` → the release's arch; anything else has no release. */
export function releaseArch(nodeArch: string): ReleaseTarget['arch'] {
  if (nodeArch === 'x64' || nodeArch === 'arm64') return nodeArch;
  throw new InputError(
    `no Vigil release for architecture ${nodeArch}`,
    'build on x64 or arm64 Linux',
    'RELEASE_ARCH',
  );
}

/**
 * The Node version the release bundles, from package.json's `release.node`. The build refuses
 * any other runtime: the fleet runs exactly the Node the release was tested with.
 */
export function checkPinnedNode(pinned: unknown, running: string): string {
  if (typeof pinned !== 'string' || !/^\d+\.\d+\.\d+$/.test(pinned)) {
    throw new InputError(
      'package.json has no release.node version (e.g. "20.20.2")',
      'pin the Node runtime the release bundles in package.json: "release": {"node": "X.Y.Z"}',
      'RELEASE_NODE_UNPINNED',
    );
  }
  if (running !== `v${pinned}`) {
    throw new InputError(
      `the release bundles Node ${pinned}, but this is Node ${running}`,
      `run the release build with Node ${pinned} (its binary is copied into the tarball)`,
      'RELEASE_NODE_MISMATCH',
    );
  }
  return pinned;
}

/**
 * Whether a file of a production dependency ships. Everything does, except what only building
 * better-sqlite3 needed: its C sources, object files and static library (the addon itself,
 * build/Release/better_sqlite3.node, stays).
 */
export function shipsDependencyFile(pathInPackage: string, packageName: string): boolean {
  if (packageName !== 'better-sqlite3') return true;
  if (pathInPackage.startsWith('deps/') || pathInPackage.startsWith('src/')) return false;
  if (pathInPackage.startsWith('build/'))
    return pathInPackage === 'build/Release/better_sqlite3.node';
  return true;
}

/**
 * `bin/vigil`: runs the bundled Node on the bundled CLI. Resolves its own path through
 * symlinks (hosts link /opt/vigil/bin/vigil to it), so no Node on PATH is ever used.
 */
export const LAUNCHER = `#!/bin/sh
# Vigil release launcher: the bundled Node runs the bundled CLI; nothing else on the host is used.
set -eu
here="$(dirname "$(readlink -f "$0")")"
exec "$here/../node/bin/node" "$here/../lib/vigil/bin/vigil.js" "$@"
`;

export interface ReleaseManifest {
  readonly name: string;
  readonly version: string;
  readonly node: { readonly version: string; readonly sha256: string };
  readonly commit: string;
  readonly sourceDateEpoch: number;
  readonly packages: readonly string[];
}
