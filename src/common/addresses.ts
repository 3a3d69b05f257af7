import net from 'node:net';

export type AddressFamily = 'ipv4' | 'ipv6';

/** An IP address or CIDR block as written in `allowedAddresses` or a list setting. */
export interface AddressBlock {
  address: string;
  prefix: number;
  family: AddressFamily;
}

/** An IP address or CIDR block; null when it is neither. */
export function parseAddressOrCidr(value: string): AddressBlock | null {
  const slash = value.indexOf('/');
  const address = slash === -1 ? value : value.slice(0, slash);
  const version = net.isIP(address);
  // A zone ID (fe80::1%eth0) names an interface of this host, not an address a peer can have.
  if (version === 0 || address.includes('%')) return null;
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

/** An IPv4 address as an unsigned 32-bit number; the caller has checked that it is one. */
function ipv4Bits(address: string): number {
  let value = 0;
  let octet = 0;
  for (let i = 0; i < address.length; i++) {
    const code = address.charCodeAt(i);
    if (code === 0x2e) {
      value = value * 256 + octet;
      octet = 0;
    } else {
      octet = octet * 10 + (code - 0x30);
    }
  }
  return value * 256 + octet;
}

/** An IPv6 address (no brackets, no zone) as a 128-bit bigint; the caller has checked that it is one. */
function ipv6Bits(address: string): bigint {
  let text = address;
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two hextets.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = ipv4Bits(tail);
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const gap = text.indexOf('::');
  let groups: string[];
  if (gap === -1) {
    groups = text.split(':');
  } else {
    const head = text.slice(0, gap) === '' ? [] : text.slice(0, gap).split(':');
    const rest = text.slice(gap + 2) === '' ? [] : text.slice(gap + 2).split(':');
    groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  }
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16));
  return value;
}

const MAPPED_IPV4_PREFIX = 0xffffn;

/**
 * A peer address in the form the sets compare: IPv4-mapped IPv6 (`::ffff:1.2.3.4`, or in hex,
 * `::ffff:102:304`) as plain IPv4. Null when not an IP, or scoped (a zone ID).
 */
function comparable(address: string): { family: AddressFamily; text: string } | null {
  if (net.isIPv4(address)) return { family: 'ipv4', text: address };
  if (!net.isIPv6(address) || address.includes('%')) return null;
  const bits = ipv6Bits(address);
  if (bits >> 32n !== MAPPED_IPV4_PREFIX) return { family: 'ipv6', text: address };
  const v4 = Number(bits & 0xffffffffn);
  return { family: 'ipv4', text: `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}` };
}

/**
 * Whose traffic a source address is, for per-source limits: the IPv4 address, or the /64 an
 * IPv6 address is in (one subscriber's prefix, whose addresses cost nothing to rotate through).
 */
export function sourceOwner(address: string): string {
  const ip = comparable(address);
  if (ip === null || ip.family === 'ipv4') return ip?.text ?? address;
  return `${(ipv6Bits(ip.text) >> 64n).toString(16)}::/64`;
}

/**
 * A set of IP addresses and CIDR blocks that answers "which is the most specific block holding
 * this address" in a few map lookups, however many blocks it holds: blocks are grouped by
 * prefix length and looked up from the longest prefix down. It serves both the small per-trunk
 * sets and the union of every trunk's addresses.
 */
export class AddressSet {
  /** prefix length → networks (the address shifted right by 32 - prefix), longest prefix first. */
  #v4: Array<[prefix: number, networks: Set<number>]> = [];
  #v6: Array<[prefix: number, networks: Set<bigint>]> = [];

  static of(entries: Iterable<string>): AddressSet {
    const set = new AddressSet();
    for (const entry of entries) {
      const block = parseAddressOrCidr(entry);
      if (block !== null) set.add(block);
    }
    return set;
  }

  get empty(): boolean {
    return this.#v4.length === 0 && this.#v6.length === 0;
  }

  add(block: AddressBlock): void {
    const ip = comparable(block.address);
    if (ip === null) return;
    // An IPv4-mapped block (::ffff:a.b.c.d/104) is the IPv4 block it maps.
    const prefix = ip.family === 'ipv4' && block.family === 'ipv6' ? Math.max(0, block.prefix - 96) : block.prefix;
    if (ip.family === 'ipv4') {
      group(this.#v4, prefix, () => new Set<number>()).add(ipv4Network(ipv4Bits(ip.text), prefix));
    } else {
      group(this.#v6, prefix, () => new Set<bigint>()).add(ipv6Bits(ip.text) >> BigInt(128 - prefix));
    }
  }

  /** The prefix length of the most specific block holding `address`; -1 when none does. */
  longestMatch(address: string): number {
    const ip = comparable(address);
    if (ip === null) return -1;
    if (ip.family === 'ipv4') {
      if (this.#v4.length === 0) return -1;
      const bits = ipv4Bits(ip.text);
      for (const [prefix, networks] of this.#v4) if (networks.has(ipv4Network(bits, prefix))) return prefix;
      return -1;
    }
    if (this.#v6.length === 0) return -1;
    const bits = ipv6Bits(ip.text);
    for (const [prefix, networks] of this.#v6) if (networks.has(bits >> BigInt(128 - prefix))) return prefix;
    return -1;
  }

  has(address: string): boolean {
    return this.longestMatch(address) >= 0;
  }
}

function ipv4Network(bits: number, prefix: number): number {
  return prefix === 0 ? 0 : Math.floor(bits / 2 ** (32 - prefix));
}

function group<T>(groups: Array<[number, T]>, prefix: number, create: () => T): T {
  const found = groups.find(([p]) => p === prefix);
  if (found) return found[1];
  const created = create();
  groups.push([prefix, created]);
  groups.sort((a, b) => b[0] - a[0]);
  return created;
}

/** Addresses no tenant may aim the edge at, whatever the operator allows: see SECURITY.md. */
const NEVER_TARGETS: Array<[block: string, why: string]> = [
  ['0.0.0.0/8', 'an unspecified address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['100.100.100.200/32', 'a cloud metadata address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['240.0.0.0/4', 'a reserved address'],
  ['::/128', 'an unspecified address'],
  ['fe80::/10', 'a link-local address'],
  ['fd00:ec2::254/128', 'a cloud metadata address'],
  ['ff00::/8', 'a multicast address'],
];

/** Loopback and private ranges: allowed as targets only as the operator says (DIALPLANE_PRIVATE_TARGETS). */
const PRIVATE_TARGETS = ['127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '::1/128', 'fc00::/7'];

/** `allow`: every private or loopback target; `deny`: none; a list: those blocks only. */
export type PrivateTargets = 'allow' | 'deny' | readonly string[];

/**
 * Where a tenant-chosen target (an agent's sipUri, a trunk's server) may point. Link-local,
 * metadata, multicast and unspecified addresses never; loopback and private ranges as the
 * operator's setting says; everything else (public addresses) always.
 */
export class TargetPolicy {
  readonly #never: Array<[AddressSet, string]>;
  readonly #private = AddressSet.of(PRIVATE_TARGETS);
  readonly #allowedPrivate: AddressSet | 'all' | 'none';

  constructor(privateTargets: PrivateTargets) {
    this.#never = NEVER_TARGETS.map(([block, why]) => [AddressSet.of([block]), why]);
    this.#allowedPrivate = privateTargets === 'allow' ? 'all' : privateTargets === 'deny' ? 'none' : AddressSet.of(privateTargets);
  }

  /** Why `ip` may not be a target, or null when it may; a name that is not an IP is null (checked once resolved). */
  refusal(ip: string): string | null {
    if (net.isIP(ip) === 0) return null;
    if (ip.includes('%')) return 'a scoped IPv6 address (with a zone ID)';
    for (const [set, why] of this.#never) if (set.has(ip)) return why;
    if (this.#allowedPrivate === 'all' || !this.#private.has(ip)) return null;
    if (this.#allowedPrivate !== 'none' && this.#allowedPrivate.has(ip)) return null;
    return 'a private or loopback address the operator has not allowed (DIALPLANE_PRIVATE_TARGETS)';
  }
}

/** What the API checks tenant-chosen addresses against: agent sipUri, trunk server, allowedAddresses. */
export interface TargetRules {
  policy: TargetPolicy;
  /** An allowedAddresses block must be at least this specific (0: any block). */
  minAllowedPrefix: { ipv4: number; ipv6: number };
}
