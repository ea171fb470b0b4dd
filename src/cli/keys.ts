import { Command } from 'commander';
import { loadEd25519KeyFile } from '../keys/key-file.js';
import { generateCometbftKeyFile } from '../keys/generate.js';

export function keysCommand(): Command {
  const keys = new Command('keys').description(
    'create and inspect validator keys (private keys are never printed)',
  );
  keys
    .command('generate')
    .description('write a new Ed25519 key as priv_validator_key.json (mode 0600); never overwrites')
    .requiredOption('-o, --out <file>', 'where to write the key')
    .action((opts: { out: string }) => {
      const pub = generateCometbftKeyFile(opts.out);
      process.stdout.write(`wrote ${opts.out}\npublic key: ${Buffer.from(pub).toString('hex')}\n`);
    });
  keys
    .command('show')
    .description('print the public key of a key file (checks its permissions)')
    .argument('<file>', 'priv_validator_key.json or a plain Ed25519 key file')
    .action((file: string) => {
      process.stdout.write(`${loadEd25519KeyFile(file).publicKeyHex}\n`);
    });
  return keys;
}
