// The namespace everything lives in: created by the stack (prod) or an existing one (staging's, which also holds
// its Postgres and realtime-chat-service).
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { podSecurityLabels } from "../network/policies.ts";

export interface AppNamespaceArgs {
  name: string;
  /** false: the namespace exists already and is only referred to. */
  create: boolean;
}

export class AppNamespace extends pulumi.ComponentResource {
  /** The namespace's name, resolved after its creation when the stack creates it. */
  public readonly name: pulumi.Output<string>;

  constructor(name: string, args: AppNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:namespace:AppNamespace", name, {}, opts);
    this.name = args.create
      ? new k8s.core.v1.Namespace(
          `${name}-namespace`,
          {
            metadata: {
              name: args.name,
              // Pod Security Admission `restricted`: every pod here (Synapse, the setup Job) is built to pass it.
              labels: { "app.kubernetes.io/part-of": "nova-matrix", ...podSecurityLabels() },
            },
          },
          { parent: this },
        ).metadata.name
      : pulumi.output(args.name);
    this.registerOutputs({ name: this.name });
  }
}
