// kubernetes-models validates types and required fields but accepts unknown keys (`spec.replica` passes). Its
// validators are ajv standalone code that reads every property the schema knows (and enumerates map-like objects),
// so running the validator over a Proxy that records what it touched reveals every key it does not know.

type Json = unknown;

/** Runs `validate` over a recording proxy of `value`; returns the paths of keys the schema never looked at. */
export function unknownFields(value: Json, validate: (data: Json) => void): string[] {
  const touched = new Map<object, Set<PropertyKey>>();
  const enumerated = new Set<object>();
  const proxies = new WeakMap<object, object>();
  const wrap = (target: Json): Json => {
    if (target === null || typeof target !== "object") return target;
    const known = proxies.get(target);
    if (known) return known;
    const seen = touched.get(target) ?? new Set<PropertyKey>();
    touched.set(target, seen);
    const proxy = new Proxy(target, {
      get(object, key, receiver) {
        seen.add(key);
        return wrap(Reflect.get(object, key, receiver));
      },
      has(object, key) {
        seen.add(key);
        return Reflect.has(object, key);
      },
      getOwnPropertyDescriptor(object, key) {
        seen.add(key);
        return Reflect.getOwnPropertyDescriptor(object, key);
      },
      ownKeys(object) {
        enumerated.add(object);
        return Reflect.ownKeys(object);
      },
    });
    proxies.set(target, proxy);
    return proxy;
  };
  validate(wrap(value));
  const unknown: string[] = [];
  const walk = (node: Json, path: string) => {
    if (node === null || typeof node !== "object") return;
    const seen = touched.get(node);
    for (const [key, child] of Object.entries(node)) {
      const childPath = Array.isArray(node) ? `${path}[${key}]` : `${path}.${key}`;
      if (!Array.isArray(node) && !enumerated.has(node) && !seen?.has(key)) unknown.push(childPath);
      else walk(child, childPath);
    }
  };
  walk(value, "");
  return unknown.map((path) => path.replace(/^\./, "")).sort();
}
