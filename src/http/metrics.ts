import client from 'prom-client';

/**
 * One registry per process (tests build several apps, so not the global default). Other parts
 * (the SIP edge, registration) add their metrics to the same registry.
 */
export class Metrics {
  readonly registry = new client.Registry();
  readonly httpDuration: client.Histogram<'method' | 'route' | 'status'>;

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new client.Histogram({
      name: 'dialplane_http_request_duration_seconds',
      help: 'HTTP API request duration by method, route pattern and status code.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [this.registry],
    });
  }
}
