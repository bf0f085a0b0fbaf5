// Isolation and scheduling for the stack: NetworkPolicies, Synapse's PodDisruptionBudget and PriorityClass.
// The namespace's Pod Security labels come from `podSecurityLabels()`, merged by whoever owns the Namespace.
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  type NetworkInput,
  networkPolicies,
  SYNAPSE_PRIORITY,
  SYNAPSE_PRIORITY_CLASS,
  synapseDisruptionBudget,
  synapsePriorityClass,
} from "./policies.ts";
import { type WorkerNetworkInput, workerNetworkPolicies } from "./workers.ts";

export { GCLB_RANGES, podSecurityLabels, SYNAPSE_PRIORITY_CLASS } from "./policies.ts";

/** Everything `networkPolicies` takes (see NetworkInput), with the namespace as a Pulumi input. */
export interface NetworkArgs extends Omit<NetworkInput, "namespace"> {
  readonly namespace: pulumi.Input<string>;
  /** Synapse in worker mode: the proxy is the only way in (network/workers.ts replaces Synapse's own policy). */
  readonly workers?: Omit<WorkerNetworkInput, "namespace" | "labels" | "scrapers"> | undefined;
}

export class Network extends pulumi.ComponentResource {
  /** `NetworkPolicy/<name>` ... of every policy created. */
  public readonly policyNames: pulumi.Output<string[]>;
  /** Set this as Synapse's `priorityClassName`. */
  public readonly priorityClassName: pulumi.Output<string>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:network:Network", name, {}, opts);
    const parent = { parent: this };
    // Built once with a placeholder to know the names and catch bad input at preview time, then per namespace.
    const all = (namespace: string) => {
      const policies = networkPolicies({ ...args, namespace });
      const workers = args.workers;
      if (!workers) return policies;
      return [
        ...policies.filter((p) => p.metadata?.name !== "matrix-synapse-ingress"),
        ...workerNetworkPolicies({ ...workers, namespace, labels: args.labels, scrapers: args.scrapers }),
      ];
    };
    const names = all("placeholder").map((p) => p.metadata?.name ?? "");
    const built = pulumi.output(args.namespace).apply(all);
    const created = names.map(
      (policyName, index) =>
        new k8s.networking.v1.NetworkPolicy(
          `${name}-${policyName}`,
          {
            metadata: { name: policyName, namespace: args.namespace, labels: { ...args.labels } },
            spec: built.apply((list) => list[index]?.spec as k8s.types.input.networking.v1.NetworkPolicySpec),
          },
          parent,
        ),
    );
    const pdb = pulumi
      .output(args.namespace)
      .apply((namespace) =>
        synapseDisruptionBudget({ namespace, labels: args.labels, podSelector: args.synapse.podSelector }),
      );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-synapse-pdb`,
      {
        metadata: { name: "matrix-synapse", namespace: args.namespace, labels: { ...args.labels } },
        spec: pdb.apply((p) => p.spec as k8s.types.input.policy.v1.PodDisruptionBudgetSpec),
      },
      parent,
    );
    const priority = synapsePriorityClass(args.labels);
    const priorityClass = new k8s.scheduling.v1.PriorityClass(
      `${name}-synapse-priority`,
      {
        metadata: { name: SYNAPSE_PRIORITY_CLASS, labels: { ...args.labels } },
        value: SYNAPSE_PRIORITY,
        globalDefault: priority.globalDefault ?? false,
        preemptionPolicy: priority.preemptionPolicy ?? "PreemptLowerPriority",
        description: priority.description ?? "",
      },
      parent,
    );
    this.policyNames = pulumi.all(created.map((p) => pulumi.interpolate`NetworkPolicy/${p.metadata.name}`));
    this.priorityClassName = priorityClass.metadata.name;
    this.registerOutputs({ policyNames: this.policyNames, priorityClassName: this.priorityClassName });
  }
}
