// @nova-matrix/contracts: what infra and the bridge must agree on, defined once and imported by package name.
// Pure (zod only): the stack outputs' schema, the appservice's and ghosts' Matrix names, the MATRIX_* settings.
export * from "./matrix-settings.ts";
export * from "./naming.ts";
export * from "./outputs.ts";
