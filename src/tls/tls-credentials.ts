/**
 * The edge's TLS credentials and trust (docs/sip-edge.md, "TLS"): its certificate and key, which
 * the TLS listener presents and which go out as a client certificate (mutual TLS) to trunks that
 * ask for one, and the CAs a trunk's certificate is verified against (the system's, plus an
 * extra bundle). Files are read at start and again on `reload()` (SIGHUP): connections already
 * open keep the context they were made with, new ones get the new one.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import tls from 'node:tls';
import { ConfigError } from '../common/errors.ts';
import type { TlsSockets } from '../sip/transport.ts';

export interface TlsFiles {
  /** PEM certificate chain (DIALPLANE_SIP_TLS_CERT); null with no key: no listener, no client certificate. */
  certPath: string | null;
  /** PEM private key (DIALPLANE_SIP_TLS_KEY). */
  keyPath: string | null;
  /** PEM bundle of CAs trusted beside the system's (DIALPLANE_SIP_TLS_CA). */
  caPath: string | null;
}

interface Contexts {
  server: tls.SecureContext | null;
  client: tls.SecureContext;
  /** When the edge's certificate expires; null without one. */
  certificateExpires: Date | null;
}

function read(path: string, variable: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, each checked; a bundle with none is an error (OpenSSL would ignore it). */
function caCertificates(bundle: string, path: string): string[] {
  const blocks = bundle.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(`DIALPLANE_SIP_TLS_CA: ${path} holds no usable PEM certificate`);
  for (const block of blocks) {
    try {
      new crypto.X509Certificate(block);
    } catch (error) {
      throw new ConfigError(`DIALPLANE_SIP_TLS_CA: ${path} holds a certificate that cannot be read (${(error as Error).message})`);
    }
  }
  return blocks;
}

/** Reads and checks the files; a ConfigError names the variable whose file is wrong. */
function load(files: TlsFiles): Contexts {
  if ((files.certPath === null) !== (files.keyPath === null)) {
    throw new ConfigError('DIALPLANE_SIP_TLS_CERT and DIALPLANE_SIP_TLS_KEY are set together or not at all');
  }
  const ca = files.caPath === null ? [] : caCertificates(read(files.caPath, 'DIALPLANE_SIP_TLS_CA'), files.caPath);
  const trust = [...tls.rootCertificates, ...ca];
  if (files.certPath === null || files.keyPath === null) {
    return { server: null, client: tls.createSecureContext({ ca: trust }), certificateExpires: null };
  }
  const cert = read(files.certPath, 'DIALPLANE_SIP_TLS_CERT');
  const key = read(files.keyPath, 'DIALPLANE_SIP_TLS_KEY');
  let certificate: crypto.X509Certificate;
  try {
    certificate = new crypto.X509Certificate(cert);
  } catch (error) {
    throw new ConfigError(`DIALPLANE_SIP_TLS_CERT: ${files.certPath} is not a PEM certificate (${(error as Error).message})`);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (error) {
    throw new ConfigError(`DIALPLANE_SIP_TLS_KEY: ${files.keyPath} is not a PEM private key (${(error as Error).message})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError(`DIALPLANE_SIP_TLS_KEY: ${files.keyPath} is not the key of the certificate in DIALPLANE_SIP_TLS_CERT`);
  }
  return {
    server: tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' }),
    client: tls.createSecureContext({ cert, key, ca: trust, minVersion: 'TLSv1.2' }),
    certificateExpires: new Date(certificate.validTo),
  };
}

export class TlsCredentials implements TlsSockets {
  readonly #files: TlsFiles;
  #contexts: Contexts;

  constructor(files: TlsFiles) {
    this.#files = files;
    this.#contexts = load(files);
  }

  get canServe(): boolean {
    return this.#contexts.server !== null;
  }

  /** When the edge's certificate expires; null without one. */
  get certificateExpires(): Date | null {
    return this.#contexts.certificateExpires;
  }

  /**
   * Reads the files again (a renewed certificate). On a ConfigError the current credentials stay.
   * A certificate cannot be added or removed this way: whether the listener exists is decided at start.
   */
  reload(): void {
    const next = load(this.#files);
    if ((next.server === null) !== (this.#contexts.server === null)) {
      throw new ConfigError('DIALPLANE_SIP_TLS_CERT: a certificate can be renewed on reload, not added or removed; restart for that');
    }
    this.#contexts = next;
  }

  server(socket: net.Socket): tls.TLSSocket {
    const context = this.#contexts.server;
    if (context === null) throw new Error('no certificate to serve TLS with');
    return new tls.TLSSocket(socket, { isServer: true, secureContext: context });
  }

  client(options: { host: string; port: number; servername: string | undefined; lookup: net.LookupFunction | undefined }): tls.TLSSocket {
    return tls.connect({
      host: options.host,
      port: options.port,
      servername: options.servername,
      secureContext: this.#contexts.client,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
  }
}
