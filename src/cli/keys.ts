import { Command } from 'commander';

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
    .description('print the public key of a key file (checks its permissions)')
    .argument('<file>', 'priv_validator_key.json or a plain Ed25519 key file')
    .action(async (file: string) => {
      const { loadEd25519KeyFile } = await import('../keys/key-file.js');
      process.stdout.write(`${loadEd25519KeyFile(file).publicKeyHex}\n`);
    });
  return keys;
}
