import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import {
  applyTick,
  newLiveState,
  probeAgent,
  renderLiveView,
  signedBy,
} from '../../src/devnet/live-view.js';

const totals = {
  ticks: 2,
  signed: 1,
  missed: 1,
  refusals: 2,
  signatures: 3,
  equivocations: 0,
};

test('the live view shows positions, who signed, refusals, misses and leadership', () => {
  const state = newLiveState(
    'demo',
    'etcd',
    [
      { chainId: 'c-slot', family: 'slot' },
      { chainId: 'c-cmt', family: 'cometbft' },
    ],
    0,
  );
  applyTick(
    state,
    {
      chainId: 'c-cmt',
      tick: 7n,
      label: 'height 7',
      author: 'node-2',
      signers: ['node-2', 'node-3'],
      proposer: 'node-3',
      refused: 2,
      unreachable: 0,
    },
    totals,
  );
  applyTick(
    state,
    { chainId: 'c-slot', tick: 9n, label: 'slot 9', refused: 0, unreachable: 3 },
    totals,
  );
  state.agents.set('node-1', {
    state: 'unresponsive',
    pid: 42,
    signer: {
      granted: 12,
      lastSigned: [
        { chainId: 'c-slot', key: 'k', family: 'slot', position: 'slot 40', secondsAgo: 1 },
      ],
      refusals: { conflict: 3 },
    },
  });
  state.agents.set('node-2', {
    state: 'ready',
    store: 'etcd',
    links: { connected: 1, total: 1 },
    roles: [{ role: 'producer', state: 'leader' }],
  });
  const view = renderLiveView(state, 12_000);
  assert.match(view, /devnet demo on etcd — 12 s/);
  assert.match(
    view,
    /c-cmt\s+cometbft\s+height 7\s+node-2,node-3 \(proposal: node-3\)\s+2\s+1\s+0/,
  );
  assert.match(view, /c-slot\s+slot\s+slot 9\s+MISSED\s+0\s+0\s+1/);
  assert.match(view, /node-1\s+unresponsive \(pid 42\)/);
  assert.match(view, /node-2\s+ready\s+etcd\s+1\/1\s+producer: leader/);
  assert.match(view, /EQUIVOCATIONS 0/);
  assert.match(view, /node-1\s+granted 12 · c-slot slot 40 \(1 s ago\) · refused conflict 3/);
  assert.match(view, /c-slot: slot 9 MISSED/);
  assert.equal(
    signedBy({ chainId: 'x', tick: 1n, label: 'slot 1', author: 'n', refused: 0, unreachable: 0 }),
    'n',
  );
});

test('probeAgent reads /readyz, and a silent or absent agent is reported as such', async () => {
  const replies: Server = createServer((req, res) => {
    res.writeHead(req.url === '/readyz' ? 200 : 404, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        status: 'ready',
        store: 'sqlite',
        cometbft: [{ connected: true }, { connected: false }],
        roles: [{ role: 'producer', state: 'follower' }],
      }),
    );
  });
  // Accepts and never answers, like a SIGSTOPped agent.
  const silent: Server = createServer(() => undefined);
  const listen = (s: Server) =>
    new Promise<number>((r) =>
      s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)),
    );
  try {
    const ok = await probeAgent({ url: `http://127.0.0.1:${await listen(replies)}` }, 7);
    assert.deepEqual(ok, {
      pid: 7,
      state: 'ready',
      store: 'sqlite',
      links: { connected: 1, total: 2 },
      roles: [{ role: 'producer', state: 'follower' }],
    });
    const paused = await probeAgent({ url: `http://127.0.0.1:${await listen(silent)}` });
    assert.equal(paused.state, 'unresponsive');
    assert.equal((await probeAgent(undefined)).state, 'down');
  } finally {
    silent.closeAllConnections();
    replies.close();
    silent.close();
  }
});
