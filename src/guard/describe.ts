/** Names a stored position's components per family, for APIs, metrics and the CLI. */
import { CometStep } from './cometbft.js';
import { GrandpaStage } from './grandpa.js';
import type { Position } from './position.js';
import type { DutyFamily } from './watermark.js';

const COMPONENTS: Record<DutyFamily, readonly string[]> = {
  cometbft: ['height', 'round', 'step'],
  slot: ['slot'],
  grandpa: ['setId', 'round', 'stage'],
};

function nameOf(table: Record<string, bigint>, value: bigint): string | undefined {
  return Object.entries(table).find(([, v]) => v === value)?.[0];
}

export function positionComponents(family: DutyFamily): readonly string[] {
  return COMPONENTS[family];
}

/** e.g. cometbft (5, 0, 2) → { height: '5', round: '0', step: 'prevote' }. Step 0 (imported
 * "nothing signed yet at this round") is shown as 'none'. */
export function describePosition(family: DutyFamily, position: Position): Record<string, string> {
  const out: Record<string, string> = {};
  COMPONENTS[family].forEach((name, i) => {
    const v = position[i];
    if (v === undefined) return;
    if (family === 'cometbft' && name === 'step')
      out[name] = v === 0n ? 'none' : (nameOf(CometStep, v) ?? String(v));
    else if (family === 'grandpa' && name === 'stage')
      out[name] = nameOf(GrandpaStage, v) ?? String(v);
    else out[name] = String(v);
  });
  return out;
}
