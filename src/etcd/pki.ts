/**
 * A small private PKI for one etcd cluster: one CA, and certificates for members (server and
 * peer) and for agents (client). etcd runs with mutual TLS on both ports, so only holders of a
 * certificate from this CA can read or write watermarks or join the cluster.
 *
 * ECDSA P-256 / SHA-256: accepted by etcd (Go) and by gRPC in Node. Private keys are written
 * once, with mode 0600, and never overwritten.
 */
import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import './reflect-shim.js';
import * as x509 from '@peculiar/x509';
import { InputError, VigilError } from '../errors.js';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as never);

const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export type CertKind = 'server' | 'peer' | 'client';

export interface CaFiles {
  readonly cert: string;
  readonly key: string;
}

export interface IssuedFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export class PkiError extends VigilError {
  constructor(message: string, hint?: string) {
    super('PKI_ERROR', message, hint);
  }
}

export function caPaths(dir: string): CaFiles {
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

function serial(): string {
  // Positive, 16 bytes: unique without a counter file.
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', key));
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n';
}

function writeOnce(path: string, text: string, mode: number): void {
  try {
    writeFileSync(path, text, { mode, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new PkiError(
        `${path} already exists`,
        'remove it first if you really mean to replace it',
      );
    throw err;
  }
}

/** Creates `ca.crt` and `ca.key` in `dir`. */
export async function initCa(
  dir: string,
  options: { commonName?: string; days?: number } = {},
): Promise<CaFiles> {
  const paths = caPaths(dir);
  if (existsSync(paths.cert) || existsSync(paths.key))
    throw new PkiError(`a CA already exists in ${dir}`, 'use it, or choose another directory');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${escapeDn(options.commonName ?? 'Vigil etcd CA')}`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (options.days ?? 3650) * DAY_MS),
    signingAlgorithm: SIGN_ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  writeOnce(paths.key, await exportKeyPem(keys.privateKey), 0o600);
  writeOnce(paths.cert, cert.toString('pem') + '\n', 0o644);
  return paths;
}

function escapeDn(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1');
}

export interface IssueOptions {
  /** File base name and certificate common name. */
  readonly name: string;
  readonly kind: CertKind;
  readonly ips?: readonly string[];
  readonly dns?: readonly string[];
  readonly days?: number;
  /** Where to write; defaults to the CA directory. */
  readonly outDir?: string;
}

/** Issues `<name>.crt` / `<name>.key` signed by the CA in `caDir`. */
export async function issueCert(caDir: string, options: IssueOptions): Promise<IssuedFiles> {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(options.name))
    throw new InputError(
      `certificate name ${JSON.stringify(options.name)} is not usable as a file name`,
      'use letters, digits, ".", "_" and "-"',
    );
  for (const ip of options.ips ?? [])
    if (isIP(ip) === 0) throw new InputError(`--ip ${JSON.stringify(ip)} is not an IP address`);
  for (const d of options.dns ?? [])
    if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(d))
      throw new InputError(`--dns ${JSON.stringify(d)} is not a DNS name`);
  if (options.kind !== 'client' && (options.ips ?? []).length + (options.dns ?? []).length === 0)
    throw new InputError(
      `a ${options.kind} certificate needs at least one --ip or --dns (the address clients dial)`,
    );

  const ca = caPaths(caDir);
  if (!existsSync(ca.cert) || !existsSync(ca.key))
    throw new PkiError(`no CA in ${caDir}`, 'create one with `vigil pki init`');
  const caCert = new x509.X509Certificate(readFileSync(ca.cert, 'utf8'));
  const caKey = await crypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(readFileSync(ca.key)).export({ format: 'der', type: 'pkcs8' }),
    KEY_ALG,
    false,
    ['sign'],
  );

  const outDir = options.outDir ?? caDir;
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const certPath = join(outDir, `${options.name}.crt`);
  const keyPath = join(outDir, `${options.name}.key`);
  if (existsSync(certPath) || existsSync(keyPath))
    throw new PkiError(`${certPath} or ${keyPath} already exists`, 'remove both to reissue');

  const keys = (await crypto.subtle.generateKey(KEY_ALG, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  // Members are dialled as servers and dial each other as clients, so they need both usages.
  const usages =
    options.kind === 'client'
      ? [x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const sans = [
    ...(options.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${escapeDn(options.name)}`,
    issuer: caCert.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + (options.days ?? 825) * DAY_MS),
    signingAlgorithm: SIGN_ALG,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(usages),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : []),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  writeOnce(keyPath, await exportKeyPem(keys.privateKey), 0o600);
  writeOnce(certPath, cert.toString('pem') + '\n', 0o644);
  return { cert: certPath, key: keyPath, ca: ca.cert };
}
