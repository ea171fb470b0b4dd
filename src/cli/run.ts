/** Process entry point: `node dist/src/cli/run.js …` is the same as `vigil …`. */
import './quiet-warnings.js';
import { main } from './main.js';

await main(process.argv);
