/**
 * `vigil cometbft …`: tools for CometBFT's privval protocol. `decode` prints any privval
 * message (as a node or signer sends it, with or without its length prefix) as JSON.
 */
import { Command, Option } from 'commander';
import { InputError } from '../errors.js';
import {
  decodePrivvalHex,
  privvalMessageToJson,
  type PrivvalProtocol,
} from '../protocols/cometbft/privval.js';
import { ProtoError } from '../protocols/cometbft/proto.js';

export function cometbftCommand(): Command {
  const cmd = new Command('cometbft').description('CometBFT remote signer tools');
  cmd
    .command('decode')
    .description('decode a privval message (hex, with or without its uvarint length prefix)')
    .argument('<hex>', 'the message bytes in hexadecimal')
    .addOption(
      new Option('--protocol <version>', 'privval protocol version')
        .choices(['v0.38', 'v1'])
        .default('v0.38'),
    )
    .action((hex: string, opts: { protocol: PrivvalProtocol }) => {
      let decoded;
      try {
        decoded = decodePrivvalHex(hex, opts.protocol);
      } catch (err) {
        if (err instanceof ProtoError)
          throw new InputError(
            `not a ${opts.protocol} privval message: ${err.message}`,
            opts.protocol === 'v0.38' ? 'try --protocol v1' : 'try --protocol v0.38',
          );
        throw err;
      }
      process.stdout.write(
        `${JSON.stringify(
          {
            protocol: opts.protocol,
            lengthPrefixed: decoded.lengthPrefixed,
            message: privvalMessageToJson(decoded.message),
          },
          null,
          2,
        )}\n`,
      );
    });
  return cmd;
}
