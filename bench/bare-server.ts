import Fastify from 'fastify';

/**
 * The anchor of `npm run bench:api`: a bare Fastify route on the same machine, answering a JSON
 * object of the size of a phone number, with no authentication and no database.
 */
const body = {
  id: '3c90c3cc-0d44-4b50-8888-8dd25736052a',
  orgId: '7f0c8f2e-6a8b-4f0e-9b8e-2d1f0c3a4b5c',
  phoneNumber: '+15550100000',
  credentialsId: '3c90c3cc-0d44-4b50-8888-8dd25736052b',
  createdTime: '2026-11-07T05:31:56.000Z',
  lastUpdateTime: '2026-11-07T05:31:56.000Z',
  registrationStatus: {
    state: 'Disabled',
    errorDescription: null,
    sipResponseMessage: null,
    lastUpdated: '2026-11-07T05:31:56.000Z',
    expiresAt: null,
  },
  description: null,
  displayName: 'Support',
  registration: false,
  providerId: null,
  incomingCallsAgentId: '3c90c3cc-0d44-4b50-8888-8dd25736052c',
};

const app = Fastify({ logger: false });
app.get('/bare', async () => body);
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
const address = app.server.address();
process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
