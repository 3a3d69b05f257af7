import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  CipherContext,
  DtlsClient,
  DtlsServer,
  HashAlgorithm,
  NamedCurveAlgorithm,
  SignatureAlgorithm,
  type SignatureHash,
} from 'werift-dtls/lib/dtls/src/index.js';
import { ProtectionProfileAes128CmHmacSha1_80, SrtpSession } from 'werift-rtp';
import type { MediaAddress, RtpPeer } from './rtp-peer.ts';

/** A party's DTLS certificate and the fingerprint its SDP announces (RFC 8122 `a=fingerprint`). */
export interface DtlsIdentity {
  certPem: string;
  keyPem: string;
  signatureHash: SignatureHash;
  fingerprint: string;
}

export async function dtlsIdentity(): Promise<DtlsIdentity> {
  const { certPem, keyPem, signatureHash } = await CipherContext.createSelfSignedCertificateWithKey(
    { hash: HashAlgorithm.sha256_4, signature: SignatureAlgorithm.ecdsa_3 },
    NamedCurveAlgorithm.secp256r1_23,
  );
  const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const digest = crypto.createHash('sha256').update(der).digest('hex').toUpperCase();
  return { certPem, keyPem, signatureHash, fingerprint: `sha-256 ${digest.match(/../g)!.join(':')}` };
}

/**
 * DTLS-SRTP between `peer`'s RTP port and `to`: the handshake (as the client when `peer` is the
 * `a=setup:active` side, RFC 5763 §5; else as the server, waiting for the other side's hello)
 * with AES_CM_128_HMAC_SHA1_80, then the SRTP session keyed from it (RFC 5764 §4.2). Resolves
 * once the handshake is done.
 */
export async function dtlsSrtpHandshake(
  peer: RtpPeer,
  identity: DtlsIdentity,
  to: MediaAddress,
  setup: 'active' | 'passive' = 'active',
  withinMs = 5000,
): Promise<SrtpSession> {
  let deliver: (data: Buffer, from: readonly [string, number]) => void = () => {};
  const transport = {
    type: 'udp',
    closed: false,
    get address(): AddressInfo {
      return { address: '0.0.0.0', family: 'IPv4', port: peer.port };
    },
    get onData() {
      return deliver;
    },
    set onData(handler: (data: Buffer, from: readonly [string, number]) => void) {
      deliver = handler;
    },
    send: async (data: Buffer) => peer.sendPacket(data, to),
    close: async () => {},
  };
  peer.divert((datagram) => deliver(datagram, [to.address, to.port]));
  const options = {
    transport,
    cert: identity.certPem,
    key: identity.keyPem,
    signatureHash: identity.signatureHash,
    srtpProfiles: [ProtectionProfileAes128CmHmacSha1_80],
  };
  // The passive side asks for the active side's certificate: each side's fingerprint is in the SDP.
  const socket = setup === 'active' ? new DtlsClient(options) : new DtlsServer({ ...options, certificateRequest: true });
  const connected = new Promise<void>((resolve) => socket.onConnect.subscribe(() => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no DTLS handshake with ${to.address}:${to.port} within ${withinMs} ms`)), withinMs);
  });
  try {
    if (socket instanceof DtlsClient) void socket.connect();
    await Promise.race([connected, late]);
  } finally {
    clearTimeout(timer);
  }
  const keys = socket.extractSessionKeys(16, 14);
  return new SrtpSession({
    keys: { localMasterKey: keys.localKey, localMasterSalt: keys.localSalt, remoteMasterKey: keys.remoteKey, remoteMasterSalt: keys.remoteSalt },
    profile: ProtectionProfileAes128CmHmacSha1_80,
  });
}
