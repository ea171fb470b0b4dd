/**
 * The local fleet's stand-in for Alertmanager's outside receivers (`node alert-sink-main.js
 * <host:port> <file>`), run in the monitor's namespace: every POST (Alertmanager's webhook
 * payload) is appended to the file as one JSON line, so a check can see which receiver a
 * notification went to and what it carried.
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';

const [listen, file] = [process.argv[2] ?? '', process.argv[3] ?? ''];
const i = listen.lastIndexOf(':');
if (i < 0 || file === '') {
  process.stderr.write('usage: alert-sink-main.js <host:port> <file>\n');
  process.exit(2);
}
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.statusCode = 405;
      res.end();
      return;
    }
    try {
      // One line per notification, whatever its size: re-serialised without newlines.
      appendFileSync(file, JSON.stringify(JSON.parse(body)) + '\n', { mode: 0o600 });
      res.end('ok\n');
    } catch (err) {
      res.statusCode = 400;
      res.end(`${err instanceof Error ? err.message : String(err)}\n`);
    }
  });
});
server.listen(Number(listen.slice(i + 1)), listen.slice(0, i), () =>
  process.stdout.write(`alert sink listening on ${listen}, writing ${file}\n`),
);
const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
