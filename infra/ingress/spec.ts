// The prod Ingress's pure parts: what is public and how GKE is told. Staging has no Ingress.

/** The only public paths: the client API, media, and the client well-known. Never `/_synapse/admin`, never metrics. */
export const PUBLIC_PATHS = [
  { path: "/_matrix/client", pathType: "Prefix" },
  { path: "/_matrix/media", pathType: "Prefix" },
  { path: "/.well-known/matrix/client", pathType: "Exact" },
] as const;

export const INGRESS_NAME = "matrix-synapse";
export const MANAGED_CERTIFICATE_NAME = "matrix-synapse";
export const FRONTEND_CONFIG_NAME = "matrix-synapse";
export const BACKEND_CONFIG_NAME = "matrix-synapse";
export const STATIC_ADDRESS_NAME = "matrix-synapse-ip";

/**
 * The load balancer's TLS policy (`gcp.compute.SSLPolicy`, named by the FrontendConfig): TLS 1.2 at least, with
 * Google's MODERN profile (forward-secret AEAD suites; TLS 1.3 as the client offers it). The default policy GKE
 * would use otherwise still accepts TLS 1.0.
 */
export const SSL_POLICY = {
  name: "matrix-synapse-tls12",
  profile: "MODERN",
  minTlsVersion: "TLS_1_2",
} as const;

/** The FrontendConfig's spec: HTTP answered with a redirect to HTTPS, and the TLS policy by name. */
export function frontendConfigSpec(sslPolicyName: string) {
  return {
    redirectToHttps: { enabled: true, responseCodeName: "MOVED_PERMANENTLY_DEFAULT" },
    sslPolicy: sslPolicyName,
  };
}

/** Annotations the Service needs for GKE's container-native load balancing and its health check. */
export function serviceAnnotationsForIngress(): Record<string, string> {
  return {
    "cloud.google.com/neg": JSON.stringify({ ingress: true }),
    "cloud.google.com/backend-config": JSON.stringify({ default: BACKEND_CONFIG_NAME }),
  };
}

/** The GKE Ingress's annotations (GKE ignores `ingressClassName`: the class is the annotation). */
export function ingressAnnotations(): Record<string, string> {
  return {
    "kubernetes.io/ingress.class": "gce",
    "kubernetes.io/ingress.global-static-ip-name": STATIC_ADDRESS_NAME,
    "networking.gke.io/managed-certificates": MANAGED_CERTIFICATE_NAME,
    "networking.gke.io/v1beta1.FrontendConfig": FRONTEND_CONFIG_NAME,
  };
}

export function ingressSpec(
  host: string,
  service: { name: string; portName: string },
): Record<string, unknown> {
  return {
    rules: [
      {
        host,
        http: {
          paths: PUBLIC_PATHS.map(({ path, pathType }) => ({
            path,
            pathType,
            backend: { service: { name: service.name, port: { name: service.portName } } },
          })),
        },
      },
    ],
  };
}

/** `https://<host>/` */
export function publicBaseUrl(host: string): string {
  return `https://${host}/`;
}
