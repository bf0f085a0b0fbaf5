// Prod's public entrance: a reserved global IP, a Google-managed certificate, HTTP -> HTTPS, a /health backend check
// and, when a Cloud DNS zone is configured, the A record.
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  BACKEND_CONFIG_NAME,
  FRONTEND_CONFIG_NAME,
  frontendConfigSpec,
  INGRESS_NAME,
  ingressAnnotations,
  ingressSpec,
  MANAGED_CERTIFICATE_NAME,
  publicBaseUrl,
  SSL_POLICY,
  STATIC_ADDRESS_NAME,
} from "./spec.ts";

export interface PublicIngressArgs {
  namespace: pulumi.Input<string>;
  host: string;
  service: { name: string; portName: string; port: number };
  /** A Cloud DNS managed zone to create the A record in. */
  dnsManagedZone?: string | undefined;
}

export class PublicIngress extends pulumi.ComponentResource {
  public readonly publicBaseUrl: string;
  public readonly address: pulumi.Output<string>;

  constructor(name: string, args: PublicIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:ingress:PublicIngress", name, {}, opts);
    this.publicBaseUrl = publicBaseUrl(args.host);
    const address = new gcp.compute.GlobalAddress(
      `${name}-address`,
      { name: STATIC_ADDRESS_NAME, addressType: "EXTERNAL", ipVersion: "IPV4" },
      { parent: this, protect: true },
    );
    this.address = address.address;
    const metadata = (resourceName: string) => ({ name: resourceName, namespace: args.namespace });
    const certificate = new k8s.apiextensions.CustomResource(
      `${name}-certificate`,
      {
        apiVersion: "networking.gke.io/v1",
        kind: "ManagedCertificate",
        metadata: metadata(MANAGED_CERTIFICATE_NAME),
        spec: { domains: [args.host] },
      },
      { parent: this },
    );
    const sslPolicy = new gcp.compute.SSLPolicy(`${name}-ssl-policy`, { ...SSL_POLICY }, { parent: this });
    const frontend = new k8s.apiextensions.CustomResource(
      `${name}-frontend`,
      {
        apiVersion: "networking.gke.io/v1beta1",
        kind: "FrontendConfig",
        metadata: metadata(FRONTEND_CONFIG_NAME),
        spec: sslPolicy.name.apply(frontendConfigSpec),
      },
      { parent: this },
    );
    const backend = new k8s.apiextensions.CustomResource(
      `${name}-backend`,
      {
        apiVersion: "cloud.google.com/v1",
        kind: "BackendConfig",
        metadata: metadata(BACKEND_CONFIG_NAME),
        spec: {
          healthCheck: {
            type: "HTTP",
            requestPath: "/health",
            port: args.service.port,
            checkIntervalSec: 15,
          },
          // Long-polling /sync holds a request for up to 30 s (clients often ask for more).
          timeoutSec: 120,
        },
      },
      { parent: this },
    );
    new k8s.networking.v1.Ingress(
      `${name}-ingress`,
      {
        metadata: { ...metadata(INGRESS_NAME), annotations: ingressAnnotations() },
        spec: ingressSpec(args.host, args.service),
      },
      { parent: this, dependsOn: [certificate, frontend, backend, address] },
    );
    if (args.dnsManagedZone !== undefined) {
      new gcp.dns.RecordSet(
        `${name}-dns`,
        {
          managedZone: args.dnsManagedZone,
          name: `${args.host}.`,
          type: "A",
          ttl: 300,
          rrdatas: [address.address],
        },
        { parent: this },
      );
    }
    this.registerOutputs({ publicBaseUrl: this.publicBaseUrl, address: this.address });
  }
}
