// The pack as the Pulumi engine runs it, for tests: started through Pulumi's own runner
// (@pulumi/pulumi/cmd/run-policy-pack, found from the pack's folder as the language host finds it) and spoken to
// over its gRPC Analyzer service with the requests the engine sends: each resource's inputs before it is created
// (Analyze) and every resource's outputs at the end (AnalyzeStack), unknown values as the engine's sentinel.
import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { KNOWN_AFTER_APPLY } from "@nova-matrix/infra/policy/rules";

export const PACK_DIR = import.meta.dirname;

// Pulumi's generated gRPC modules are CommonJS that fill `exports` at run time: loaded with require.
const require = createRequire(join(PACK_DIR, "package.json"));
const grpc = require("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
const pb =
  require("@pulumi/pulumi/proto/analyzer_pb.js") as typeof import("@pulumi/pulumi/proto/analyzer_pb.js");
const { AnalyzerClient } =
  require("@pulumi/pulumi/proto/analyzer_grpc_pb.js") as typeof import("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
const { Struct } =
  require("google-protobuf/google/protobuf/struct_pb.js") as typeof import("google-protobuf/google/protobuf/struct_pb.js");
const { Empty } =
  require("google-protobuf/google/protobuf/empty_pb.js") as typeof import("google-protobuf/google/protobuf/empty_pb.js");
/** How the engine sends a value it does not know yet. */
const { unknownValue } = require("@pulumi/pulumi/runtime/rpc.js") as { unknownValue: string };

export interface Resource {
  type: string;
  name: string;
  /** Inputs (Analyze) or outputs (AnalyzeStack); KNOWN_AFTER_APPLY where the value is unknown. */
  props: Record<string, unknown>;
}

export interface Diagnostic {
  policy: string;
  enforcement: "advisory" | "mandatory" | "disabled" | "remediate";
  message: string;
}

const LEVELS = ["advisory", "mandatory", "disabled", "remediate"] as const;

/** The props as the engine marshals them: plain JSON, each unknown value as the engine's unknown sentinel. */
function wire(value: unknown): unknown {
  if (value === KNOWN_AFTER_APPLY) return unknownValue;
  if (Array.isArray(value)) return value.map(wire);
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, wire(item)]));
  return value;
}

function analyzerResource<
  T extends InstanceType<typeof pb.AnalyzeRequest> | InstanceType<typeof pb.AnalyzerResource>,
>(into: T, stack: string, resource: Resource): T {
  into.setType(resource.type);
  into.setName(resource.name);
  into.setUrn(`urn:pulumi:${stack}::nova-matrix::${resource.type}::${resource.name}`);
  const plain = JSON.parse(JSON.stringify(resource.props)) as Record<string, unknown>;
  into.setProperties(Struct.fromJavaScript(wire(plain) as Record<string, never>));
  into.setOptions(new pb.AnalyzerResourceOptions());
  return into;
}

const diagnostics = (response: InstanceType<typeof pb.AnalyzeResponse>): Diagnostic[] =>
  response.getDiagnosticsList().map((d) => ({
    policy: d.getPolicyname(),
    enforcement: LEVELS[d.getEnforcementlevel()] ?? "mandatory",
    message: d.getMessage(),
  }));

export interface RunningPack {
  /** The pack's name, version and policies with their enforcement levels. */
  info(): Promise<{ name: string; version: string; policies: Record<string, Diagnostic["enforcement"]> }>;
  analyze(stack: string, resource: Resource): Promise<Diagnostic[]>;
  analyzeStack(stack: string, resources: readonly Resource[]): Promise<Diagnostic[]>;
  stop(): Promise<void>;
}

/** Starts the pack in its own process with Pulumi's runner and connects to the port it prints. */
export async function startPack(): Promise<RunningPack> {
  const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack");
  // The engine's address goes first; the runner drops it (a pack only serves).
  const child: ChildProcess = spawn(process.execPath, [runner, "127.0.0.1:0", "."], {
    cwd: PACK_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /^(\d+)\n/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
    });
    child.once("exit", (code) =>
      reject(new Error(`the policy pack exited (${code}) before serving:\n${output}`)),
    );
  });
  const client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = <Request, Response>(
    method: (request: Request, callback: (error: Error | null, response: Response) => void) => unknown,
    request: Request,
  ) =>
    new Promise<Response>((resolve, reject) =>
      method.call(client, request, (error, response) => (error ? reject(error) : resolve(response))),
    );
  return {
    async info() {
      const info = await call<InstanceType<typeof Empty>, InstanceType<typeof pb.AnalyzerInfo>>(
        client.getAnalyzerInfo,
        new Empty(),
      );
      return {
        name: info.getName(),
        version: info.getVersion(),
        policies: Object.fromEntries(
          info.getPoliciesList().map((p) => [p.getName(), LEVELS[p.getEnforcementlevel()] ?? "mandatory"]),
        ),
      };
    },
    async analyze(stack, resource) {
      return diagnostics(
        await call(client.analyze, analyzerResource(new pb.AnalyzeRequest(), stack, resource)),
      );
    },
    async analyzeStack(stack, resources) {
      const request = new pb.AnalyzeStackRequest();
      request.setResourcesList(resources.map((r) => analyzerResource(new pb.AnalyzerResource(), stack, r)));
      return diagnostics(await call(client.analyzeStack, request));
    },
    async stop() {
      client.close();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
