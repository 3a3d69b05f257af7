/**
 * Name resolution with a say on where requests may go: a `lookup` for sockets that applies a
 * refusal to what a name resolves to, so that a name cannot lead the edge where an address could
 * not (a tenant's `localhost`, a name that resolves to a metadata address).
 */
import dns from 'node:dns';
import net from 'node:net';

/** Raised for a send the transport refuses (a refused destination, a connection cap). */
export class RefusedDestinationError extends Error {}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * A `lookup` for sockets that applies `refusal` to what a name resolves to. IP addresses pass
 * untouched (dgram calls lookup for every send, responses included; requests to IP addresses
 * are checked in `send`).
 */
export function guardedLookup(refusal: (address: string) => string | null) {
  return (hostname: string, options: number | dns.LookupOptions, callback: LookupCallback): void => {
    const family = typeof options === 'number' ? options : (options.family ?? 0);
    const all = typeof options === 'object' && options.all === true;
    if (net.isIP(hostname) !== 0) {
      if (all) callback(null, [{ address: hostname, family: net.isIP(hostname) }]);
      else callback(null, hostname, net.isIP(hostname));
      return;
    }
    dns.lookup(hostname, { family: family === 'IPv4' ? 4 : family === 'IPv6' ? 6 : family, all: true }, (error, addresses) => {
      if (error) return callback(error, '');
      const allowed = addresses.filter((a) => refusal(a.address) === null);
      if (allowed.length === 0) {
        const why = addresses.length === 0 ? 'no address' : `${addresses[0].address}: ${refusal(addresses[0].address)}`;
        return callback(new RefusedDestinationError(`${hostname} resolves to no address requests may go to (${why})`), '');
      }
      if (all) callback(null, allowed);
      else callback(null, allowed[0].address, allowed[0].family);
    });
  };
}
