import { Command, Option } from 'commander';

type Scheme = 'ed25519' | 'sr25519';

export function keysCommand(): Command {
  const keys = new Command('keys').description(
    'create and inspect validator keys (private keys are never printed)',
  );
  keys
    .command('generate')
    .description('write a new Ed25519 key as priv_validator_key.json (mode 0600); never overwrites')
    .requiredOption('-o, --out <file>', 'where to write the key')
    .action(async (opts: { out: string }) => {
      const { generateCometbftKeyFile } = await import('../keys/generate.js');
      const pub = generateCometbftKeyFile(opts.out);
      process.stdout.write(`wrote ${opts.out}\npublic key: ${Buffer.from(pub).toString('hex')}\n`);
    });
  keys
    .command('show')
    .description(
      "print a key file's public key, and for an Ed25519 (CometBFT) key its consensus address, in bech32 with --prefix (checks the file's permissions)",
    )
    .requiredOption(
      '--key <file>',
      'priv_validator_key.json, a plain 32-byte seed file (raw, hex or base64) or a Substrate keystore file',
    )
    .option('--prefix <prefix>', 'bech32 prefix of consensus addresses, e.g. cosmosvalcons')
    .addOption(
      new Option(
        '--scheme <scheme>',
        'key scheme of a plain seed file (default: sr25519 for a Substrate keystore file, else ed25519)',
      ).choices(['ed25519', 'sr25519']),
    )
    .option(
      '--ss58-prefix <n>',
      'sr25519 keys: the SS58 network prefix of the address (0 Polkadot, 2 Kusama)',
      (v: string) => Number(v),
      42,
    )
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        key: string;
        prefix?: string;
        scheme?: Scheme;
        ss58Prefix: number;
        json?: boolean;
      }) => {
        const { describeKeyFile, detectScheme, formatDescription } =
          await import('../keys/describe.js');
        const d = describeKeyFile(
          opts.key,
          opts.scheme ?? detectScheme(opts.key),
          opts.prefix,
          opts.ss58Prefix,
        );
        process.stdout.write(
          opts.json ? `${JSON.stringify(d, null, 2)}\n` : `${formatDescription(d)}\n`,
        );
      },
    );
  return keys;
}
