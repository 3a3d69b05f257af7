import net from 'node:net';

/** An IP address or CIDR block, as accepted in `allowedAddresses`; null when it is neither. */
export function parseAddressOrCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const version = net.isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const raw = value.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(raw)) return null;
    prefix = Number(raw);
    if (prefix > max) return null;
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** A set of allowed sources built once and checked per call (node's BlockList does the matching). */
export function addressMatcher(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const parsed = parseAddressOrCidr(entry);
    if (!parsed) continue;
    list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    // An IPv4 peer may reach a dual-stack socket as ::ffff:a.b.c.d.
    if (parsed.family === 'ipv4') list.addSubnet(`::ffff:${parsed.address}`, 96 + parsed.prefix, 'ipv6');
  }
  return list;
}
