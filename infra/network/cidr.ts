// IPv4 address ranges (pure): parsing, overlap and containment, shared by the config schema, the NetworkPolicies and
// the appservice token's isolation check.

/** Private IPv4 space (RFC 1918, shared 100.64/10, loopback): where pod ranges live, never an internet client. */
export const PRIVATE_RANGES = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "127.0.0.0/8",
];

const IPV4_CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** First and last address of an IPv4 CIDR as numbers, or undefined when `cidr` is not one. */
export function cidrBounds(cidr: string): [number, number] | undefined {
  const match = IPV4_CIDR.exec(cidr);
  if (!match) return undefined;
  const octets = match.slice(1, 5).map(Number);
  const bits = Number(match[5]);
  if (octets.some((octet) => octet > 255) || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  const start = Math.floor(octets.reduce((n, octet) => n * 256 + octet, 0) / size) * size;
  return [start, start + size - 1];
}

export const isIpv4Cidr = (cidr: string) => cidrBounds(cidr) !== undefined;

function bounds(cidr: string): [number, number] {
  const found = cidrBounds(cidr);
  if (!found) throw new Error(`"${cidr}" is not an IPv4 CIDR such as 10.4.0.0/14`);
  return found;
}

export function cidrsOverlap(a: string, b: string): boolean {
  const [aStart, aEnd] = bounds(a);
  const [bStart, bEnd] = bounds(b);
  return aStart <= bEnd && bStart <= aEnd;
}

/** Whether every address of `inner` is inside `outer`. */
export function cidrInside(inner: string, outer: string): boolean {
  const [innerStart, innerEnd] = bounds(inner);
  const [outerStart, outerEnd] = bounds(outer);
  return outerStart <= innerStart && innerEnd <= outerEnd;
}

export const isPrivateRange = (cidr: string) => PRIVATE_RANGES.some((space) => cidrInside(cidr, space));
