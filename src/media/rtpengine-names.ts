import dns from 'node:dns/promises';
import net from 'node:net';
import { OperatorError } from '../common/errors.ts';
import type { RtpengineAddress } from '../config.ts';

type Lookup = (name: string) => Promise<{ address: string }[]>;

const systemLookup: Lookup = (name) => dns.lookup(name, { all: true, verbatim: true });

/**
 * The configured rtpengines with their DNS names resolved, once, at start (as Kamailio's rtpengine
 * module does): each address a name has becomes an rtpengine of the name's weight. The ng client
 * talks to addresses (it matches replies by their source), and the signed Record-Route names the
 * address that holds a call. A name that does not resolve stops the start with a clear error; a
 * changed address needs a restart.
 */
export async function resolveRtpengines(configured: readonly RtpengineAddress[], lookup: Lookup = systemLookup): Promise<RtpengineAddress[]> {
  const resolved: RtpengineAddress[] = [];
  for (const entry of configured) {
    if (net.isIP(entry.host) !== 0) {
      resolved.push(entry);
      continue;
    }
    let addresses: { address: string }[];
    try {
      addresses = await lookup(entry.host);
    } catch (error) {
      // The state of the world, not a wrong setting (the name's container may not be up yet): exit code 1.
      throw new OperatorError(`DIALPLANE_RTPENGINE: ${entry.host} does not resolve (${(error as NodeJS.ErrnoException).code ?? String(error)})`, 1);
    }
    if (addresses.length === 0) throw new OperatorError(`DIALPLANE_RTPENGINE: ${entry.host} has no address`, 1);
    for (const { address } of addresses) {
      if (!resolved.some((known) => known.host === address && known.port === entry.port))
        resolved.push({ host: address, port: entry.port, weight: entry.weight });
    }
  }
  return resolved;
}
