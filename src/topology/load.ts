/** Reading topology files and publishing their JSON Schema for editors. */
import { z } from 'zod';
import { loadYamlFile, parseYaml } from '../config/yaml-file.js';
import { TopologySchema, type Topology } from './schema.js';

export function loadTopology(file: string): Topology {
  return loadYamlFile(file, TopologySchema);
}

export function parseTopology(file: string, text: string): Topology {
  return parseYaml(file, text, TopologySchema);
}

/** JSON Schema of the file as an operator writes it (defaults make fields optional). */
export function topologyJsonSchema(): string {
  const schema = z.toJSONSchema(TopologySchema, { io: 'input', target: 'draft-2020-12' });
  return (
    JSON.stringify(
      {
        ...schema,
        title: 'Vigil fleet topology',
      },
      null,
      2,
    ) + '\n'
  );
}
