/**
 * Builds the release tarball (`npm run release`): the compiled CLI, its production
 * dependencies and the pinned Node runtime, packed reproducibly — the same commit and the same
 * Node binary give the same bytes, so the sha256 a topology pins can be rebuilt and checked.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { InputError } from '../errors.js';
import {
  LAUNCHER,
  checkPinnedNode,
  releaseArch,
  releaseName,
  shipsDependencyFile,
  type ReleaseManifest,
} from './artifact.js';

export interface BuiltRelease {
  readonly tarball: string;
  readonly sha256: string;
  readonly bytes: number;
  readonly manifest: ReleaseManifest;
}

export interface BuildReleaseOptions {
  /** The package root holding package.json, bin/, dist/src and node_modules. */
  readonly root: string;
  readonly outDir: string;
  /** The Node binary to bundle (its version must be the pinned one). Default: this process's. */
  readonly nodeBinary?: string;
  readonly nodeVersion?: string;
  /** Timestamps in the tarball; default SOURCE_DATE_EPOCH, else the commit's time. */
  readonly sourceDateEpoch?: number;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function git(root: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** Production packages as paths under node_modules (nested ones keep their nesting). */
function productionPackages(root: string): string[] {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const prefix = join(root, 'node_modules') + sep;
  const paths = out
    .split('\n')
    .filter((p) => p.startsWith(prefix))
    .map((p) => p.slice(prefix.length));
  // A release without its dependencies would install and then fail on every host.
  if (paths.length === 0) {
    throw new InputError(
      'npm ls found no production dependencies',
      'run `npm ci` first',
      'RELEASE_NO_DEPS',
    );
  }
  return [...new Set(paths)].sort();
}

function packageNameOf(path: string): string {
  const parts = path.split(sep);
  const i = parts.lastIndexOf('node_modules');
  const rest = i < 0 ? parts : parts.slice(i + 1);
  return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

function copyPackage(from: string, to: string, name: string): void {
  cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => {
      const rel = relative(from, src).split(sep).join('/');
      // Nested node_modules are copied as packages of their own (only production ones).
      if (rel === 'node_modules' || rel.startsWith('node_modules/')) return false;
      return rel === '' || shipsDependencyFile(rel, name) || statSync(src).isDirectory();
    },
  });
}

export function buildRelease(options: BuildReleaseOptions): BuiltRelease {
  const opts = { ...options, root: resolve(options.root) };
  const manifestIn = JSON.parse(readFileSync(join(opts.root, 'package.json'), 'utf8')) as {
    version: string;
    release?: { node?: unknown };
  };
  const nodeVersion = checkPinnedNode(
    manifestIn.release?.node,
    opts.nodeVersion ?? process.version,
  );
  const target = {
    version: manifestIn.version,
    platform: 'linux' as const,
    arch: releaseArch(process.arch),
  };
  const name = releaseName(target);
  const epoch =
    opts.sourceDateEpoch ??
    (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : undefined) ??
    Number(git(opts.root, ['log', '-1', '--format=%ct']) ?? NaN);
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new InputError(
      'no timestamp for the release files',
      'set SOURCE_DATE_EPOCH or build from a git checkout',
      'RELEASE_EPOCH',
    );
  }
  const distCli = join(opts.root, 'dist', 'src', 'cli', 'run.js');
  try {
    statSync(distCli);
  } catch {
    throw new InputError('dist/src is not built', 'run `npm run build` first', 'RELEASE_NOT_BUILT');
  }

  const stage = mkdtempSync(join(tmpdir(), 'vigil-release-'));
  try {
    const top = join(stage, name);
    const lib = join(top, 'lib', 'vigil');
    mkdirSync(join(top, 'bin'), { recursive: true });
    mkdirSync(join(top, 'node', 'bin'), { recursive: true });
    const nodeBinary = opts.nodeBinary ?? process.execPath;
    copyFileSync(nodeBinary, join(top, 'node', 'bin', 'node'));
    chmodSync(join(top, 'node', 'bin', 'node'), 0o755);
    writeFileSync(join(top, 'bin', 'vigil'), LAUNCHER, { mode: 0o755 });
    chmodSync(join(top, 'bin', 'vigil'), 0o755);

    mkdirSync(lib, { recursive: true });
    copyFileSync(join(opts.root, 'package.json'), join(lib, 'package.json'));
    cpSync(join(opts.root, 'bin'), join(lib, 'bin'), { recursive: true });
    cpSync(join(opts.root, 'data'), join(lib, 'data'), { recursive: true });
    // Only the compiled sources: declarations and source maps point at files not shipped.
    cpSync(join(opts.root, 'dist', 'src'), join(lib, 'dist', 'src'), {
      recursive: true,
      filter: (src) => !src.endsWith('.d.ts') && !src.endsWith('.map'),
    });
    const packages = productionPackages(opts.root);
    for (const p of packages) {
      copyPackage(
        join(opts.root, 'node_modules', p),
        join(lib, 'node_modules', p),
        packageNameOf(p),
      );
    }

    const manifest: ReleaseManifest = {
      name,
      version: target.version,
      node: { version: nodeVersion, sha256: sha256File(nodeBinary) },
      commit: git(opts.root, ['rev-parse', 'HEAD']) ?? 'unknown',
      sourceDateEpoch: epoch,
      packages: packages.map((p) => p.split(sep).join('/')),
    };
    writeFileSync(join(top, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');

    mkdirSync(opts.outDir, { recursive: true });
    const tarball = join(opts.outDir, `${name}.tar.gz`);
    // GNU tar with sorted names, fixed owners and times, and gzip without a name or time:
    // the archive's bytes depend only on the files' contents and modes.
    const packed = spawnSync(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        'tar --sort=name --format=gnu --mtime="@$1" --owner=0 --group=0 --numeric-owner ' +
          '--mode=go-w,a+rX -C "$2" -cf - "$3" | gzip -n -6 > "$4"',
        'pack',
        String(epoch),
        stage,
        name,
        tarball,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
    );
    if (packed.status !== 0) {
      throw new InputError(
        `packing ${tarball} failed: ${packed.stderr.trim()}`,
        'GNU tar and gzip are needed',
        'RELEASE_PACK',
      );
    }
    const sha256 = sha256File(tarball);
    writeFileSync(`${tarball}.sha256`, `${sha256}  ${name}.tar.gz\n`);
    return { tarball, sha256, bytes: statSync(tarball).size, manifest };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Files under a directory, relative, sorted: for tests comparing two unpacked releases. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
