import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PEM files a test made with openssl: a CA, and certificates it signed for 127.0.0.1 and localhost. */
export interface TestPki {
  dir: string;
  caCert: string;
  /** A certificate for 127.0.0.1 / localhost, signed by the CA, and its key. */
  cert: string;
  key: string;
  /** The same names, but self-signed: trusted by nobody. */
  untrustedCert: string;
  untrustedKey: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A throwaway CA and certificates (EC P-256, valid a day) in a temporary folder. */
export function makeTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-pki-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'];
  const names = 'subjectAltName=IP:127.0.0.1,DNS:localhost';
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=dialplane test CA'], dir);
  openssl(['req', ...ec.slice(0, 5), '-keyout', 'peer.key', '-out', 'peer.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'peer.ext'), `${names}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'peer.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'peer.ext',
      '-out',
      'peer.pem',
    ],
    dir,
  );
  openssl(['req', '-x509', ...ec, '-keyout', 'untrusted.key', '-out', 'untrusted.pem', '-subj', '/CN=127.0.0.1', '-addext', names], dir);
  const file = (name: string) => path.join(dir, name);
  return {
    dir,
    caCert: file('ca.pem'),
    cert: file('peer.pem'),
    key: file('peer.key'),
    untrustedCert: file('untrusted.pem'),
    untrustedKey: file('untrusted.key'),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
