// Label selectors for the rules and the dashboard (pure), so both match Synapse's processes the same way.

/** A label value to match exactly, or `{ regex }` for `=~`. */
export type Matcher = string | { readonly regex: string };

/** `{name="value",other=~"a|b"}` */
export const selector = (labels: Record<string, Matcher>) =>
  `{${Object.entries(labels)
    .map(([name, value]) =>
      typeof value === "string"
        ? `${name}=${JSON.stringify(value)}`
        : `${name}=~${JSON.stringify(value.regex)}`,
    )
    .join(",")}}`;

/** A matcher for exactly these label values (job names are plain words and dashes). */
export function anyOf(values: readonly string[]): Matcher {
  for (const value of values)
    if (!/^[a-zA-Z0-9_-]+$/.test(value)) throw new Error(`"${value}" cannot be matched literally in a regex`);
  if (values.length === 0) throw new Error("anyOf needs at least one value");
  return values.length === 1 ? (values[0] as string) : { regex: values.join("|") };
}

/** Every Synapse process's scrape job: the main process's alone (monolith), or it and each worker group's. */
export function synapseJobs(input: {
  readonly synapseJob: string;
  readonly workers?: { readonly groupJobs: readonly string[] } | undefined;
}): Matcher {
  return input.workers ? anyOf([input.synapseJob, ...input.workers.groupJobs]) : input.synapseJob;
}
