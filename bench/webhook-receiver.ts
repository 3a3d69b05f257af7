import http from 'node:http';

/**
 * The receiving end of `npm run bench:events` (and of bench:api's rows with a webhook): a bare
 * HTTP server that answers every POST with 204 and keeps, per request, how long after the
 * event's time it arrived. GET /stats reports, POST /reset starts over.
 */
let latenciesMs: number[] = [];
let firstAt = 0;
let lastAt = 0;

const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    const sorted = [...latenciesMs].sort((a, b) => a - b);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ count: latenciesMs.length, firstAt, lastAt, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }));
    return;
  }
  let body = '';
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    if (req.url === '/reset') {
      latenciesMs = [];
      firstAt = 0;
      lastAt = 0;
    } else if (body !== '') {
      const now = Date.now();
      const time = (JSON.parse(body) as { time?: string }).time;
      if (time !== undefined) latenciesMs.push(now - Date.parse(time));
      firstAt ||= now;
      lastAt = now;
    }
    res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
