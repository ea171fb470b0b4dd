/**
 * Which nodes a link serves: real SecretConnections on loopback between the signer and the
 * node simulator, with the node pinned by id (tcp://<id>@host:port), pinned wrongly, unpinned,
 * or holding the validator key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import {
  CometbftSignerConfigSchema,
  parseNodeAddress,
  pinnedNodeAddress,
} from '../../../src/chains/cometbft/config.js';
import {
  startCometbftSigner,
  type CometbftSignerHandle,
} from '../../../src/chains/cometbft/signer.js';
import { nodeIdOf, parseNodeId } from '../../../src/chains/cometbft/node-id.js';
import { CometbftNodeSimulator } from '../../../src/devnet/cometbft-node.js';
import { TcpProxy } from '../../../src/devnet/tcp-proxy.js';
import { Ed25519Key } from '../../../src/keys/ed25519.js';
import { VigilError } from '../../../src/errors.js';
import { cometbftNodeId } from '../../../src/render/state.js';
import {
  CHAIN_ID,
  capturedLogger,
  makeAgent,
  storeRows,
  tempDir,
  validatorKey,
} from './fixtures.js';

const ERROR = 50;
const WARN = 40;

/** Polls `check` every 20 ms until it holds, failing after `ms`. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function startNode(nodeKey?: Ed25519Key) {
  return CometbftNodeSimulator.start({
    chainId: CHAIN_ID,
    protocol: 'v0.38',
    validatorPublicKey: validatorKey.publicKey,
    blockTimeMs: 5,
    ...(nodeKey ? { nodeKey } : {}),
  });
}

describe('node ids and pinned addresses', () => {
  it('matches tendermint-rs: config/tests/support/config/node_key.json → 1a7b6bcf…626699', () => {
    // Vector from informalsystems/tendermint-rs, config/tests/mod.rs (node_key_parser): the
    // fixture's priv_key.value is seed ‖ public key.
    const raw = Buffer.from(
      'GRKDcf6krxXq2csRmIC0TNO/SZqoDIxN7JbxehQnjqGkBIVze7BvLGGn72mA68qvubnex30PhoJcXHGYtMl/tA==',
      'base64',
    );
    assert.equal(
      Ed25519Key.fromSeed(raw.subarray(0, 32)).publicKeyHex,
      raw.subarray(32).toString('hex'),
    );
    assert.equal(nodeIdOf(raw.subarray(32)), '1a7b6bcf3d6fb055ab3aebca415847531b626699');
  });

  it('a node id is the hex of the first 20 bytes of sha256(public key)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (pub) => {
        const expected = Buffer.from(sha256(pub).subarray(0, 20)).toString('hex');
        assert.equal(nodeIdOf(pub), expected);
        // The provisioning renderer derives p2p ids from node_key.json the same way.
        assert.equal(cometbftNodeId(pub), expected);
      }),
    );
  });

  it('parses pinned addresses, folds uppercase ids to lowercase, and refuses bad ids precisely', () => {
    const id = nodeIdOf(validatorKey.publicKey);
    const base = { chainId: 'c', keyId: 'k', connectionKeyFile: 'x' };
    const parse = (nodes: string[]) =>
      CometbftSignerConfigSchema.safeParse({ chains: [{ ...base, nodes }] });
    const upper = parse([`tcp://${id.toUpperCase()}@node-1.example:26659`]);
    assert.ok(upper.success);
    assert.equal(upper.data.chains[0]!.nodes[0], `tcp://${id}@node-1.example:26659`);
    assert.deepEqual(parseNodeAddress(upper.data.chains[0]!.nodes[0]!), {
      host: 'node-1.example',
      port: 26659,
      nodeId: id,
    });
    assert.deepEqual(parseNodeAddress('tcp://[::1]:26659'), { host: '::1', port: 26659 });
    assert.equal(pinnedNodeAddress('tcp://[::1]:26659', id), `tcp://${id}@[::1]:26659`);
    assert.equal(
      pinnedNodeAddress(`tcp://${id}@h:7`, 'ab'.repeat(20)),
      `tcp://${'ab'.repeat(20)}@h:7`,
    );
    const cases: Array<[string, RegExp]> = [
      [`tcp://${id.slice(1)}@h:1`, /must be 40 hex digits .*got 39/],
      [`tcp://${id}0@h:1`, /must be 40 hex digits .*got 41/],
      [`tcp://${id.slice(0, 4)}g${id.slice(5)}@h:1`, /must be hex, but has "g" at position 5/],
      [`tcp://@h:1`, /must be 40 hex digits .*got 0/],
      [`tcp://${id}@h:0`, /port must be 1\.\.65535, got 0/],
      [`${id}@h:1`, /expected tcp:\/\/<node id>@host:port/],
    ];
    for (const [address, message] of cases) {
      const r = parse([address]);
      assert.equal(r.success, false, address);
      assert.match(r.error!.issues[0]!.message, message, address);
      assert.deepEqual(r.error!.issues[0]!.path, ['chains', 0, 'nodes', 0]);
    }
    const twice = parse([`tcp://${id}@h:1`, 'tcp://H:1']);
    assert.equal(twice.success, false);
    assert.match(twice.error!.issues[0]!.message, /h:1 is listed twice/);
    assert.deepEqual(parseNodeId(id.toUpperCase()), { id });
  });
});

describe('examples/cometbft', () => {
  it('its agent config section parses, with the pinned and the unpinned node', () => {
    const text = readFileSync('examples/cometbft/README.md', 'utf8');
    const yaml = /```yaml\n([\s\S]*?)```/.exec(text)![1]!;
    const { cometbft } = parseYaml(yaml) as { cometbft: unknown };
    const parsed = CometbftSignerConfigSchema.parse(cometbft);
    const nodes = parsed.chains[0]!.nodes.map(parseNodeAddress);
    assert.equal(nodes[0]!.nodeId?.length, 40);
    assert.equal(nodes[1]!.nodeId, undefined);
  });
});

describe('pinning the node a link serves (real SecretConnections on loopback)', () => {
  it('pinned to the right id: signs, status shows the pin, no unpinned warning', async () => {
    const dir = tempDir();
    const sim = await startNode();
    const agent = makeAgent(dir.path, 'a');
    const log = capturedLogger();
    try {
      await agent.start([sim.pinnedAddress], 'v0.38', 5000, { logger: log.logger });
      await sim.waitForHeight(3n);
      assert.ok(sim.signed.length >= 9 && sim.signed.every((r) => r.verified));
      const [link] = agent.signer!.status();
      assert.equal(link!.connected, true);
      assert.equal(link!.pinnedNodeId, sim.nodeId);
      assert.equal(link!.remoteNodeId, sim.nodeId);
      assert.equal(link!.lastError, undefined);
      assert.ok(!log.lines.some((l) => l.msg.startsWith('unpinned')));
      assert.ok(log.lines.some((l) => l.msg === 'connected to CometBFT node' && l.pinned));
    } finally {
      await agent.close();
      await sim.stop();
      dir.remove();
    }
  });

  it('pinned to another id: nothing is served, the error is logged and in status, and retried', async () => {
    const dir = tempDir();
    const sim = await startNode();
    const agent = makeAgent(dir.path, 'a');
    const log = capturedLogger();
    const wrongId = nodeIdOf(Ed25519Key.fromSeed(randomBytes(32)).publicKey);
    const address = sim.pinnedAddress.replace(sim.nodeId, wrongId);
    try {
      await agent.start([address], 'v0.38', 5000, { logger: log.logger });
      const refusals = () =>
        log.lines.filter((l) => l.level === ERROR && l.code === 'COMETBFT_NODE_ID_MISMATCH');
      // Two refusals: the link keeps retrying (with backoff) rather than giving up.
      await until('two refused connects', () => refusals().length >= 2);
      const first = refusals()[0]!;
      assert.match(
        String(first.err),
        new RegExp(`has node id ${sim.nodeId}, not the pinned ${wrongId}`),
      );
      assert.match(
        String(first.hint),
        new RegExp(`pin ${sim.pinnedAddress.replace(/\./g, '\\.')}`),
      );
      const [link] = agent.signer!.status();
      assert.equal(link!.connected, false);
      assert.equal(link!.lastErrorCode, 'COMETBFT_NODE_ID_MISMATCH');
      assert.equal(link!.remoteNodeId, sim.nodeId);
      assert.equal(link!.pinnedNodeId, wrongId);
      // The node never got an answer and the guard was never asked.
      assert.equal(sim.completedHeight, 0n);
      assert.deepEqual(sim.signed, []);
      assert.deepEqual(sim.refused, []);
      assert.deepEqual(agent.decisions, []);
    } finally {
      await agent.close();
      await sim.stop();
      dir.remove();
    }
  });

  it('unpinned: signs, and warns at every connect with the pinned form to use', async () => {
    const dir = tempDir();
    const sim = await startNode();
    const proxy = new TcpProxy(sim.port);
    await proxy.start();
    const agent = makeAgent(dir.path, 'a');
    const log = capturedLogger();
    const address = `tcp://127.0.0.1:${proxy.port}`;
    try {
      await agent.start([address], 'v0.38', 5000, { logger: log.logger });
      await sim.waitForHeight(2n);
      const warnings = () => log.lines.filter((l) => l.msg.startsWith('unpinned'));
      assert.equal(warnings().length, 1);
      const w = warnings()[0]!;
      assert.equal(w.level, WARN);
      assert.equal(
        w.msg,
        `unpinned: any process that can listen on 127.0.0.1:${proxy.port} can ask for signatures; pin this node as tcp://${sim.nodeId}@127.0.0.1:${proxy.port}`,
      );
      assert.equal(w.nodeId, sim.nodeId);
      // Cut the link: the reconnect warns again.
      proxy.cut(100);
      await until('a second unpinned warning', () => warnings().length >= 2);
      const reached = sim.completedHeight;
      await sim.waitForHeight(reached + 2n);
      assert.ok(sim.signed.every((r) => r.verified));
      assert.equal(agent.signer!.status()[0]!.pinnedNodeId, undefined);
    } finally {
      await agent.close();
      await sim.stop();
      await proxy.stop();
      dir.remove();
    }
  });

  it('refuses to start when the connection key is the validator key', async () => {
    const dir = tempDir();
    const agent = makeAgent(dir.path, 'a');
    const seed = createHash('sha256').update('vigil cometbft test validator').digest();
    const file = join(dir.path, 'validator-as-connection.key');
    writeFileSync(file, `${seed.toString('hex')}\n`, { mode: 0o600 });
    assert.equal(Ed25519Key.fromSeed(seed).publicKeyHex, validatorKey.publicKeyHex);
    try {
      await assert.rejects(
        agent.start(['tcp://127.0.0.1:9'], 'v0.38', 5000, { connectionKeyFile: file }),
        (err: unknown) =>
          err instanceof VigilError &&
          err.code === 'COMETBFT_CONNECTION_KEY_IS_VALIDATOR_KEY' &&
          /is the validator key "validator"/.test(err.message) &&
          /key of its own/.test(err.hint ?? ''),
      );
      assert.equal(agent.signer, undefined);
    } finally {
      await agent.close();
      dir.remove();
    }
  });

  it('refuses a node that authenticates with the validator key, pinned or not', async () => {
    const dir = tempDir();
    const sim = await startNode(validatorKey);
    const agent = makeAgent(dir.path, 'a');
    const log = capturedLogger();
    try {
      // Pinned to the validator key's id: refused before any link starts.
      await assert.rejects(
        agent.start([sim.pinnedAddress], 'v0.38'),
        (err: unknown) =>
          err instanceof VigilError && err.code === 'COMETBFT_NODE_PINNED_TO_VALIDATOR_KEY',
      );
      // Unpinned: the link is refused once the handshake shows the key.
      await agent.start([sim.address], 'v0.38', 5000, { logger: log.logger });
      await until('a refusal', () =>
        log.lines.some((l) => l.code === 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY'),
      );
      const refusal = log.lines.find((l) => l.code === 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY')!;
      assert.equal(refusal.level, ERROR);
      assert.match(String(refusal.hint), /remove it/);
      const [link] = agent.signer!.status();
      assert.equal(link!.connected, false);
      assert.equal(link!.lastErrorCode, 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY');
      assert.equal(sim.completedHeight, 0n);
      assert.deepEqual(sim.signed, []);
      assert.deepEqual(agent.decisions, []);
      // Nothing was served, so nothing is in the store beyond its schema.
      assert.doesNotMatch(
        storeRows(join(dir.path, 'store.db')),
        new RegExp(validatorKey.publicKeyHex),
      );
      assert.ok(!log.lines.some((l) => l.msg.startsWith('unpinned')));
    } finally {
      await agent.close();
      await sim.stop();
      dir.remove();
    }
  });

  it('checks connection and node keys against every validator key of the agent', async () => {
    const dir = tempDir();
    const otherKey = Ed25519Key.fromSeed(sha256(new TextEncoder().encode('another validator')));
    const sim = await startNode(otherKey);
    const agent = makeAgent(dir.path, 'a');
    const log = capturedLogger();
    const validatorSeed = createHash('sha256').update('vigil cometbft test validator').digest();
    const validatorAsConnectionKey = join(dir.path, 'validator-as-connection.key');
    writeFileSync(validatorAsConnectionKey, `${validatorSeed.toString('hex')}\n`, { mode: 0o600 });
    const keys: Record<string, Uint8Array> = {
      validator: validatorKey.publicKey,
      other: otherKey.publicKey,
    };
    const start = (otherConnectionKey: string, nodes: string[]) =>
      startCometbftSigner({
        config: CometbftSignerConfigSchema.parse({
          chains: [
            {
              chainId: CHAIN_ID,
              keyId: 'validator',
              nodes,
              connectionKeyFile: join(dir.path, 'a.key'),
              backoff: { initialMs: 20, maxMs: 200 },
            },
            {
              chainId: 'other-chain',
              keyId: 'other',
              nodes: ['tcp://127.0.0.1:9'],
              connectionKeyFile: otherConnectionKey,
            },
          ],
        }),
        guard: agent.guard,
        publicKeyOf: (id) => keys[id],
        logger: log.logger,
      });
    let signer: CometbftSignerHandle | undefined;
    try {
      // Chain other-chain's connection key is chain vigil-test-1's validator key.
      await assert.rejects(
        start(validatorAsConnectionKey, [sim.address]),
        (err: unknown) =>
          err instanceof VigilError &&
          err.code === 'COMETBFT_CONNECTION_KEY_IS_VALIDATOR_KEY' &&
          /chain other-chain: .* is the validator key "validator"/.test(err.message),
      );
      // A vigil-test-1 node pinned to the id of other-chain's validator key.
      await assert.rejects(
        start(join(dir.path, 'b.key'), [sim.pinnedAddress]),
        (err: unknown) =>
          err instanceof VigilError &&
          err.code === 'COMETBFT_NODE_PINNED_TO_VALIDATOR_KEY' &&
          /validator key "other"/.test(err.message),
      );
      // A vigil-test-1 node that authenticates with other-chain's validator key.
      signer = await start(join(dir.path, 'b.key'), [sim.address]);
      await until('a refusal', () =>
        log.lines.some((l) => l.code === 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY'),
      );
      const refusal = log.lines.find((l) => l.code === 'COMETBFT_NODE_HOLDS_VALIDATOR_KEY')!;
      assert.match(String(refusal.err), /validator key "other" of chain other-chain/);
      assert.equal(sim.completedHeight, 0n);
      assert.deepEqual(agent.decisions, []);
    } finally {
      await signer?.stop();
      await agent.close();
      await sim.stop();
      dir.remove();
    }
  });
});
