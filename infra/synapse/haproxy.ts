// The in-cluster reverse proxy in front of Synapse's processes (HAProxy 2.6: the harness runs Debian 12's package,
// the cluster the same branch's official image), rendered from the worker plan. Pure.
//
// Two client listeners, so the address Synapse trusts can never come from a client's own header:
// - internal (in-cluster callers): X-Forwarded-For is replaced by the TCP peer's address;
// - public (only Google's load balancer reaches it): X-Forwarded-For is replaced by the client address the load
//   balancer appended (`<whatever the client sent>, <client>, <load balancer>`: the second from the right), so a
//   forged header never reaches Synapse. Synapse reads only the first X-Forwarded-For entry.
// Routing: the path is looked up in a map file of regular expressions (first match, else the main process).
// `/sync` is hashed on the access token and `user_id` (one user stays on one sync worker); the client workers hash
// on the room in the path (pagination of a room must stay on one worker), else on the token.

/** Where a request can be routed: a worker group that serves HTTP, or the main process. */
export type RouteTarget = "main" | "sync" | "client" | "media";

export interface Route {
  /** A regular expression on the request path (PCRE, as the proxy reads it). */
  readonly path: string;
  readonly target: RouteTarget;
}

export interface ProxyPorts {
  /** In-cluster callers (the bridge, realtime-chat-service): X-Forwarded-For is set to the caller's address. */
  readonly internal: number;
  /** The public load balancer only: X-Forwarded-For is the client address the load balancer saw. */
  readonly public: number;
  /** The proxy's own liveness (`/healthz`) and Prometheus metrics (`/metrics`). */
  readonly stats: number;
}

export const PROXY_POD_PORTS: ProxyPorts = { internal: 8008, public: 8080, stats: 8405 };

export const HAPROXY_VERSION = "2.6.31";
/** The official image of the same LTS branch as Debian 12's haproxy (2.6.12), which the harness runs. */
export const HAPROXY_IMAGE = `haproxy:${HAPROXY_VERSION}-alpine`;
/** The official image's `haproxy` user. */
export const HAPROXY_UID = 99;
export const HAPROXY_CONFIG_FILE = "haproxy.cfg";
export const ROUTES_MAP_FILE = "routes.map";
/** Where the cluster mounts the proxy's ConfigMap. */
export const HAPROXY_CONFIG_DIR = "/usr/local/etc/haproxy";

/** Longest a `/sync` may take: the bridge's loop allows a slow catch-up up to 10 minutes (bridge/src/core/sync-loop.ts). */
export const SYNC_TIMEOUT_SECONDS = 660;

export interface ProxyServer {
  readonly instance: string;
  readonly host: string;
  readonly port: number;
}

export interface HaproxyInput {
  /** In the cluster (pod DNS names, resolvers) or on loopback (the harness). */
  readonly placement:
    | { readonly kind: "cluster" }
    | { readonly kind: "loopback"; readonly proxyPorts: ProxyPorts; readonly proxyConfigDir: string };
  readonly routes: readonly Route[];
  readonly backends: Readonly<Record<RouteTarget, readonly ProxyServer[]>>;
}

/** The map file: `<regex> <backend>` per line, in routing order (haproxy's map_reg returns the first match). */
export function routesMap(routes: readonly Route[]): string {
  for (const route of routes)
    if (/\s/.test(route.path))
      throw new Error(`route ${route.path}: a path pattern cannot contain whitespace`);
  return `${routes.map((route) => `${route.path} ${route.target}`).join("\n")}\n`;
}

const BALANCE: Record<RouteTarget, string[]> = {
  main: [],
  sync: ["balance hash var(txn.sync_key)", `timeout server ${SYNC_TIMEOUT_SECONDS}s`],
  client: ["balance hash var(txn.client_key)"],
  media: [],
};

/** `haproxy.cfg` and the routes map, by file name. */
export function haproxyConfig(input: HaproxyInput): Record<string, string> {
  const { placement } = input;
  const cluster = placement.kind === "cluster";
  const ports: ProxyPorts = cluster ? PROXY_POD_PORTS : placement.proxyPorts;
  const bind = (port: number) => (cluster ? `bind :${port}` : `bind 127.0.0.1:${port}`);
  const mapPath = `${cluster ? HAPROXY_CONFIG_DIR : placement.proxyConfigDir}/${ROUTES_MAP_FILE}`;
  // In the cluster, servers are pod DNS names resolved at run time (a scaled-down one stays down until it exists).
  const serverOptions = cluster ? " resolvers kubedns init-addr none check" : " check";

  const routing = [
    // The access token (header or query), and the user an appservice acts as.
    "http-request set-var(txn.token) url_param(access_token)",
    'http-request set-var(txn.token) req.hdr(authorization),word(2," ") if { req.hdr(authorization) -m beg -i "bearer " }',
    "http-request set-var(txn.user_id) url_param(user_id)",
    "http-request set-var(txn.sync_key) var(txn.token),concat(/,txn.user_id)",
    // The room of /rooms/<room>/... (v3 and r0 paths, then api/v1), else the token.
    "http-request set-var(txn.client_key) var(txn.token)",
    "http-request set-var(txn.client_key) path,field(6,/) if { path,field(5,/) -m str rooms }",
    "http-request set-var(txn.client_key) path,field(7,/) if { path,field(6,/) -m str rooms }",
    `http-request set-var(txn.backend) path,map_reg(${mapPath},main)`,
    "use_backend %[var(txn.backend)]",
  ];

  const lines: string[] = [
    "# Rendered by infra/synapse/haproxy.ts from the worker plan: do not edit.",
    "global",
    "  log stdout format raw local0 info",
    "",
    "defaults",
    "  mode http",
    "  log global",
    "  option httplog",
    "  option dontlognull",
    "  timeout connect 5s",
    "  timeout http-request 10s",
    "  timeout http-keep-alive 60s",
    "  timeout queue 30s",
    `  timeout client ${SYNC_TIMEOUT_SECONDS}s`,
    "  timeout server 180s",
    // One server down moves only its own share of users or rooms.
    "  hash-type consistent",
    "  option redispatch",
    "  default-server inter 2s fall 2 rise 2",
    "",
  ];
  if (cluster)
    lines.push("resolvers kubedns", "  parse-resolv-conf", "  hold valid 10s", "  hold obsolete 0s", "");
  lines.push(
    "frontend stats",
    `  ${bind(ports.stats)}`,
    "  monitor-uri /healthz",
    "  http-request use-service prometheus-exporter if { path /metrics }",
    // Each server's health-check state (the harness waits on it; an operator can read it with port-forward).
    "  stats enable",
    "  stats uri /stats",
    "  http-request set-log-level silent",
    "",
    "frontend internal",
    `  ${bind(ports.internal)}`,
    "  http-request set-header X-Forwarded-For %[src]",
    "  http-request set-header X-Forwarded-Proto http",
    "  http-request del-header Forwarded",
    ...routing.map((line) => `  ${line}`),
    "",
    "frontend public",
    `  ${bind(ports.public)}`,
    // Only what the Ingress publishes (and the load balancer's health check).
    "  http-request deny deny_status 404 unless { path_beg /_matrix/client/ /_matrix/media/ } || { path /.well-known/matrix/client /health }",
    // Fail closed: a request that did not come through the load balancer (fewer than its two entries) is refused.
    "  http-request deny deny_status 400 if { req.hdr_cnt(x-forwarded-for) lt 2 } !{ path /health }",
    // Read before replacing (a rule after a set-header would see the new value); only the load balancer's
    // health checks come without the header.
    "  http-request set-var(txn.client_ip) req.hdr(x-forwarded-for,-2) if { req.hdr_cnt(x-forwarded-for) ge 2 }",
    "  http-request set-var(txn.client_ip) src unless { var(txn.client_ip) -m found }",
    "  http-request set-header X-Forwarded-For %[var(txn.client_ip)]",
    "  http-request set-header X-Forwarded-Proto https",
    "  http-request del-header Forwarded",
    ...routing.map((line) => `  ${line}`),
    "",
  );
  for (const target of ["main", "sync", "client", "media"] as const) {
    const servers = input.backends[target];
    if (servers.length === 0) throw new Error(`the proxy's ${target} backend has no server`);
    lines.push(
      `backend ${target}`,
      "  option httpchk",
      "  http-check send meth GET uri /health",
      ...BALANCE[target].map((line) => `  ${line}`),
      ...servers.map((s) => `  server ${s.instance} ${s.host}:${s.port}${serverOptions}`),
      "",
    );
  }
  return { [HAPROXY_CONFIG_FILE]: lines.join("\n"), [ROUTES_MAP_FILE]: routesMap(input.routes) };
}
