// Kubernetes quantities as numbers: one reading for the diff's "a PVC can grow but not shrink" rule and the bridge's
// heap size from its memory limit.

const QUANTITY_UNITS: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

const SYNAPSE_SIZE_UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * A Synapse size (`max_upload_size: 50M`) in bytes, as Synapse's `parse_size` reads it: K, M, G and T are binary
 * multiples. NaN when it is not one.
 */
export function synapseSizeBytes(value: unknown): number {
  const match = /^(\d+)([KMGT]?)$/.exec(String(value));
  const unit = match ? SYNAPSE_SIZE_UNITS[match[2] ?? ""] : undefined;
  return match && unit !== undefined ? Number(match[1]) * unit : Number.NaN;
}

/** A Kubernetes quantity (`10Gi`, `500M`) in bytes; NaN when it is not one. */
export function quantityBytes(value: unknown): number {
  const match = /^(\d+(?:\.\d+)?)([kMGT]i?|)$/.exec(String(value));
  const unit = match ? QUANTITY_UNITS[match[2] ?? ""] : undefined;
  return match && unit !== undefined ? Number(match[1]) * unit : Number.NaN;
}
