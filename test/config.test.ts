import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../src/common/errors.ts';
import { loadConfig } from '../src/config.ts';

test('media settings: rtpengine addresses with weights, interface names in pairs, the fallback', () => {
  const media = (env: Record<string, string>) => loadConfig(env).media;
  assert.deepEqual(media({}), { rtpengines: [], carrierInterface: null, agentInterface: null, fallback: 'reject', timeoutMs: 1000 });
  assert.deepEqual(media({ DIALPLANE_RTPENGINE: '10.0.0.5:2223=3, [::1]:22222, rtpengine-1.media.internal:2223=2' }).rtpengines, [
    { host: '10.0.0.5', port: 2223, weight: 3 },
    { host: '::1', port: 22222, weight: 1 },
    // A name stays a name here; the server resolves it at start (test/media/rtpengine-names.test.ts).
    { host: 'rtpengine-1.media.internal', port: 2223, weight: 2 },
  ]);
  const both = media({ DIALPLANE_RTPENGINE_CARRIER_INTERFACE: 'external', DIALPLANE_RTPENGINE_AGENT_INTERFACE: 'internal' });
  assert.deepEqual([both.carrierInterface, both.agentInterface], ['external', 'internal']);
  assert.equal(media({ DIALPLANE_MEDIA_FALLBACK: 'direct' }).fallback, 'direct');

  const refused: [Record<string, string>, RegExp][] = [
    [{ DIALPLANE_RTPENGINE: 'rtp_engine.example.com:2223' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '-rtp.example.com:2223' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '10.0.5:2223' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '[rtp.example.com]:2223' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '10.0.0.5' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '10.0.0.5:2223=0' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE: '10.0.0.5:99999' }, /DIALPLANE_RTPENGINE must list/],
    [{ DIALPLANE_RTPENGINE_CARRIER_INTERFACE: 'external' }, /set both or neither/],
    [{ DIALPLANE_RTPENGINE_CARRIER_INTERFACE: 'ext ernal', DIALPLANE_RTPENGINE_AGENT_INTERFACE: 'internal' }, /interface name/],
    [{ DIALPLANE_MEDIA_FALLBACK: 'maybe' }, /DIALPLANE_MEDIA_FALLBACK must be reject or direct/],
    [{ DIALPLANE_RTPENGINE_TIMEOUT_MS: '0' }, /DIALPLANE_RTPENGINE_TIMEOUT_MS/],
  ];
  for (const [env, message] of refused)
    assert.throws(
      () => loadConfig(env),
      (error: unknown) => error instanceof ConfigError && message.test(error.message),
      JSON.stringify(env),
    );
});
