// A stack's resources as a Graphviz graph: components are boxes (clusters) around the resources they parent,
// arrows run from a resource to what depends on it (what must exist first points at what comes after). Pure.
import type { Registration } from "./run.ts";

/** `kubernetes:apps/v1:Deployment` -> `Deployment`, `gcp:sql/databaseInstance:DatabaseInstance` -> `sql DatabaseInstance`. */
export function shortType(type: string): { provider: string; kind: string } {
  const [provider = type, module = "", kind = type] = type.split(":");
  const group = provider === "gcp" ? `${module.split("/")[0]} ` : "";
  return { provider, kind: `${group}${kind}` };
}

/** Drops an edge a->c when c is reachable from a another way: the picture shows order, not every input. */
export function transitiveReduction(
  edges: ReadonlyMap<string, ReadonlySet<string>>,
): Map<string, Set<string>> {
  const reachable = (from: string, skip: string): boolean => {
    const seen = new Set<string>();
    const stack = [...(edges.get(from) ?? [])].filter((to) => to !== skip);
    while (stack.length > 0) {
      const at = stack.pop() as string;
      if (at === skip) return true;
      if (seen.has(at)) continue;
      seen.add(at);
      stack.push(...(edges.get(at) ?? []));
    }
    return false;
  };
  return new Map(
    [...edges].map(([from, targets]) => [from, new Set([...targets].filter((to) => !reachable(from, to)))]),
  );
}

const quote = (text: string) => `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;

const COLOURS: Record<string, string> = { kubernetes: "#dbe9ff", gcp: "#fde8c8", random: "#e6e6e6" };

/** The DOT source of a stack's graph; same registrations, same bytes (everything sorted). */
export function stackDot(stack: string, registrations: readonly Registration[]): string {
  const byUrn = new Map(registrations.map((r) => [r.urn, r]));
  const resources = registrations.filter((r) => r.custom).sort((a, b) => a.urn.localeCompare(b.urn));
  const components = registrations.filter((r) => !r.custom);
  const children = (parent: string | undefined) =>
    registrations.filter(
      (r) => r.parent === parent || (parent === undefined && r.parent && !byUrn.has(r.parent)),
    );

  // Edges between resources only: a dependency on a component stands for every resource inside it.
  const resourcesUnder = (urn: string): string[] => {
    const node = byUrn.get(urn);
    if (!node) return [];
    if (node.custom) return [urn];
    return registrations.filter((r) => r.parent === urn).flatMap((r) => resourcesUnder(r.urn));
  };
  const edges = new Map<string, Set<string>>();
  for (const resource of resources)
    for (const dependency of resource.dependencies)
      for (const from of resourcesUnder(dependency))
        if (from !== resource.urn) edges.set(from, (edges.get(from) ?? new Set()).add(resource.urn));
  const reduced = transitiveReduction(edges);

  const lines = [
    `digraph ${quote(stack)} {`,
    `  graph [rankdir=LR, fontname="Helvetica", fontsize=12, labelloc=t, label=${quote(`stack ${stack}: ${resources.length} resources in ${components.length} components (arrow: must exist first)`)}];`,
    '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    '  edge [color="#555555", arrowsize=0.6];',
  ];
  const emit = (parent: string | undefined, indent: string) => {
    const inside = children(parent).sort((a, b) => a.urn.localeCompare(b.urn));
    for (const node of inside) {
      if (node.custom) {
        const { provider, kind } = shortType(node.type);
        const label = `${node.name}\n${kind}`;
        lines.push(
          `${indent}${quote(node.urn)} [label=${quote(label)}, fillcolor=${quote(COLOURS[provider] ?? "#ffffff")}];`,
        );
      } else {
        lines.push(`${indent}subgraph ${quote(`cluster_${node.urn}`)} {`);
        lines.push(
          `${indent}  label=${quote(`${node.name} (${node.type.split(":").pop()})`)}; style="dashed,rounded"; color="#888888";`,
        );
        emit(node.urn, `${indent}  `);
        lines.push(`${indent}}`);
      }
    }
  };
  emit(undefined, "  ");
  for (const [from, targets] of [...reduced].sort(([a], [b]) => a.localeCompare(b)))
    for (const to of [...targets].sort()) lines.push(`  ${quote(from)} -> ${quote(to)};`);
  lines.push("}");
  return `${lines.join("\n")}\n`;
}
