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
  type WorkerTraffic,
} from "./policies.ts";

export { GCLB_RANGES, podSecurityLabels, SYNAPSE_PRIORITY_CLASS } from "./policies.ts";

type Labels = Readonly<Record<string, string>>;
/** A peer outside the program's knowledge until apply: pods by label, or an address and port a provider computes. */
type Endpoint =
  | { readonly pods: Labels; readonly port: number }
  | { readonly address: pulumi.Input<string>; readonly port: pulumi.Input<number> };
type Resolved = ({ pods: Labels } | { address: string }) & { port: number };

/**
 * Everything `networkPolicies` takes (see NetworkInput), with the namespace and the addresses only a provider knows
 * (Cloud SQL's and Memorystore's private IPs) as Pulumi inputs.
 */
export interface NetworkArgs extends Omit<NetworkInput, "namespace" | "database" | "workers"> {
  readonly namespace: pulumi.Input<string>;
  readonly database: Endpoint;
  readonly workers?: (Omit<WorkerTraffic, "redis"> & { readonly redis: Endpoint }) | undefined;
}

const resolve = (endpoint: Endpoint): pulumi.Output<Resolved> =>
  "pods" in endpoint
    ? pulumi.output({ pods: { ...endpoint.pods }, port: endpoint.port })
    : pulumi.all([endpoint.address, endpoint.port]).apply(([address, port]) => ({ address, port }));
/** A stand-in address with the same shape, to know the policy names before the real one exists. */
const placeholder = (endpoint: Endpoint): Resolved =>
  "pods" in endpoint ? { ...endpoint } : { address: "192.0.2.1", port: 1 };

export class Network extends pulumi.ComponentResource {
  /** `NetworkPolicy/<name>` ... of every policy created. */
  public readonly policyNames: pulumi.Output<string[]>;
  /** Set this as Synapse's `priorityClassName`. */
  public readonly priorityClassName: pulumi.Output<string>;

  constructor(name: string, args: NetworkArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nova:network:Network", name, {}, opts);
    const parent = { parent: this };
    const { workers } = args;
    const input = (namespace: string, database: Resolved, redis: Resolved | undefined): NetworkInput => ({
      ...args,
      namespace,
      database,
      workers: workers && redis ? { ...workers, redis } : undefined,
    });
    // Built once with placeholders to know the names and catch bad input at preview time, then with the real values.
    const names = networkPolicies(
      input("placeholder", placeholder(args.database), workers ? placeholder(workers.redis) : undefined),
    ).map((p) => p.metadata?.name ?? "");
    const built = pulumi
      .all([
        pulumi.output(args.namespace),
        resolve(args.database),
        workers ? resolve(workers.redis) : pulumi.output(undefined),
      ])
      .apply(([namespace, database, redis]) => networkPolicies(input(namespace, database, redis)));
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
