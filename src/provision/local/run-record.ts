/**
 * The run record, `<state>/local/run.json`: every namespace, link and process a local apply
 * created, written the moment each one exists, so `vigil destroy --local` (or the rollback of
 * a failed apply) removes exactly those and nothing else, even after a crash mid-apply.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { LocalFleetError } from './exec.js';

const CreatedSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('netns'), name: z.string().min(1) }),
  z.strictObject({ kind: z.literal('link'), name: z.string().min(1), netns: z.string().min(1) }),
  z.strictObject({
    kind: z.literal('process'),
    pid: z.number().int().positive(),
    netns: z.string().min(1),
    what: z.string().min(1),
    /** The process's start time (field 22 of /proc/<pid>/stat) so a reused pid is not killed. */
    startTime: z.string().min(1),
  }),
]);
export type Created = z.infer<typeof CreatedSchema>;

const RunRecordSchema = z.strictObject({
  version: z.literal(1),
  fleet: z.string().min(1),
  fleetId: z.string().regex(/^[a-z0-9]{4}$/),
  runDir: z.string().min(1),
  internetNetns: z.string().min(1),
  hosts: z.array(
    z.strictObject({
      name: z.string().min(1),
      netns: z.string().min(1),
      publicAddress: z.string().min(1),
      vpnAddress: z.string().min(1),
    }),
  ),
  created: z.array(CreatedSchema),
  /** The monitor's Prometheus intervals apply set (monitor.ts), so a restart sets them again. */
  monitorIntervalSeconds: z.number().positive().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export class RunRecordFile {
  constructor(
    readonly path: string,
    readonly record: RunRecord,
  ) {}

  static create(path: string, record: RunRecord): RunRecordFile {
    if (existsSync(path))
      throw new LocalFleetError(
        `${path} exists: a local fleet is already running (or a destroy did not finish)`,
        'run `vigil destroy --local` first',
      );
    mkdirSync(dirname(path), { recursive: true });
    const f = new RunRecordFile(path, record);
    f.save();
    return f;
  }

  static load(path: string): RunRecordFile {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new LocalFleetError(
        `cannot read the local run record ${path}: ${(err as Error).message}`,
        'nothing to destroy if no local fleet was applied',
      );
    }
    const parsed = RunRecordSchema.safeParse(raw);
    if (!parsed.success)
      throw new LocalFleetError(`${path} is damaged: ${parsed.error.issues[0]?.message ?? ''}`);
    return new RunRecordFile(path, parsed.data);
  }

  /** Records one created thing and writes the file before the caller goes on. */
  add(item: Created): void {
    this.record.created.push(item);
    this.save();
  }

  save(): void {
    // Written to a temporary name then renamed: a crash leaves the old record or the new one.
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.record, null, 2) + '\n', { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
