// Addresses, shared by the servers: what counts as loopback (listening anywhere else needs asking).

/** localhost, ::1 and 127.0.0.0/8 (also as an IPv4-mapped IPv6 address). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
}
