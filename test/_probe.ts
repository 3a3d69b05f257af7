import { startTestServer } from './support/server.ts';
for (const backend of ['sqlite', 'postgres'] as const) {
  const s = await startTestServer(backend);
  const key = s.defaultKey;
  const r = (m: string, p: string, o: any = {}) => s.request(m, p, { key, ...o });
  const creds = (await r('POST', '/api/v1/sip-credentials', { body: { server: 'a.example.com' } })).body;
  const stats: Record<string, Record<number, number>> = {};
  const note = (k: string, st: number) => { (stats[k] ??= {})[st] = ((stats[k]![st]) ?? 0) + 1; };
  for (let i = 0; i < 40; i++) {
    const agent = (await r('POST', '/api/v1/agents', { body: { name: 'a' } })).body;
    const n = (await r('POST', '/api/v1/sip-phone-numbers', { body: { phoneNumber: `+1555000${1000 + i}`, credentialsId: creds.id } })).body;
    const c2 = (await r('POST', '/api/v1/sip-credentials', { body: { server: 'b.example.com' } })).body;
    const [a, b] = await Promise.all([
      r('DELETE', `/api/v1/sip-phone-numbers/${n.id}`, { query: { force: i % 2 === 0 } }),
      r('PUT', `/api/v1/sip-phone-numbers/${n.id}/agent-link`, { query: { agentId: agent.agentId, mode: 'replaceOutbound' } }),
    ]);
    note('delnum', a.status); note('linkout', b.status);
    const n2 = (await r('POST', '/api/v1/sip-phone-numbers', { body: { phoneNumber: `+1555000${3000 + i}`, credentialsId: creds.id } })).body;
    const [c, d] = await Promise.all([
      r('DELETE', `/api/v1/agents/${agent.agentId}`),
      r('PUT', `/api/v1/sip-phone-numbers/${n2.id}/agent-link`, { query: { agentId: agent.agentId } }),
    ]);
    note('delagent', c.status); note('linkin', d.status);
    const [e, f] = await Promise.all([
      r('DELETE', `/api/v1/sip-credentials/${c2.id}`, { query: { force: i % 2 === 0 } }),
      r('POST', '/api/v1/sip-phone-numbers', { body: { phoneNumber: `+1555000${2000 + i}`, credentialsId: c2.id } }),
    ]);
    note('delcreds', e.status); note('postnum', f.status);
  }
  console.log(backend, JSON.stringify(stats));
  await s.close();
}
