/** The devnet file `vigil up` reads: which simulated chains to run and on which store. */
import { z } from 'zod';
import { loadYamlFile } from '../config/yaml-file.js';

const SlotChainSchema = z
  .object({
    family: z.literal('slot'),
    chainId: z.string().min(1).max(128),
    /** Slot length; every node tries to author every slot, the guard lets exactly one win. */
    slotMs: z.number().int().min(50).max(60_000).default(1000),
    /** Validator nodes sharing one key, each with its own agent. */
    nodes: z.number().int().min(1).max(16).default(3),
  })
  .strict();

const GrandpaChainSchema = z
  .object({
    family: z.literal('grandpa'),
    chainId: z.string().min(1).max(128),
    /** Time per vote stage; a round is a prevote tick then a precommit tick. */
    stageMs: z.number().int().min(50).max(60_000).default(500),
    /** The authority set id rises (and rounds restart) after this many rounds. */
    roundsPerSet: z.number().int().min(1).max(1_000_000).default(20),
    nodes: z.number().int().min(1).max(16).default(3),
  })
  .strict();

const CometbftChainSchema = z
  .object({
    family: z.literal('cometbft'),
    /** CometBFT limits chain ids to 50 characters. */
    chainId: z.string().min(1).max(50),
    /** Time per height: proposal, prevote and precommit are spread over it. */
    blockMs: z.number().int().min(150).max(60_000).default(1000),
    nodes: z.number().int().min(1).max(16).default(3),
    /** Each node proposes its own block at every height: the guard must sign only one. */
    conflictingProposals: z.boolean().default(false),
    protocol: z.enum(['v0.38', 'v1']).default('v0.38'),
  })
  .strict();

export const DevnetFileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9-]{1,40}$/, 'lower-case letters, digits and dashes'),
    /** `etcd`: a local 3-member cluster from the installed etcd binary, one proxy per agent and member. */
    store: z.enum(['sqlite', 'etcd']).default('sqlite'),
    chains: z
      .array(
        z.discriminatedUnion('family', [SlotChainSchema, GrandpaChainSchema, CometbftChainSchema]),
      )
      .min(1),
  })
  .strict();

export type DevnetFile = z.output<typeof DevnetFileSchema>;
export type ChainSpec = DevnetFile['chains'][number];
export type CometbftChainSpec = Extract<ChainSpec, { family: 'cometbft' }>;

export const loadDevnetFile = (path: string): DevnetFile => loadYamlFile(path, DevnetFileSchema);
