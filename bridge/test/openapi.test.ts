// The OpenAPI document is generated from the routes themselves: every route fastify registered is in it with its
// methods and its own schema (a route added without one fails here), and the document is valid OpenAPI 3.1.
// No homeserver is needed: the document is the service's own (built without a bridge, as a disabled integration).
import { randomBytes } from "node:crypto";
import { testLogger } from "@nova-matrix/dev/harness/test-stack";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { buildService, type Service } from "../src/service/app.ts";
import { CLOSE_SLOW_CONSUMER, CLOSE_TOO_MANY_FOR_USER } from "../src/service/event-stream.ts";
import { CONSOLE_PATH } from "../src/service/plugins/console.ts";
import { DOCS_PATH, OPENAPI_PATH } from "../src/service/plugins/docs.ts";

interface Operation {
  summary?: string;
  description?: string;
  parameters?: { name: string; in: string }[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Record<string, unknown> }> };
  responses: Record<
    string,
    { description: string; content?: Record<string, { schema?: { $ref?: string } }> }
  >;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

/** fastify's `/v1/media/:server_name` as OpenAPI's `/v1/media/{server_name}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, "{$1}");
/** Pages, not API (the console and Swagger UI's own routes), deliberately hidden from the document. */
const isPage = (url: string) => url.startsWith(CONSOLE_PATH) || url.startsWith(DOCS_PATH);

describe("the OpenAPI document, generated from the route definitions", () => {
  let service: Service;
  let document: Document;

  beforeAll(async () => {
    service = await buildService({
      idle: "disabled",
      apiToken: new Secret(randomBytes(32).toString("base64url")),
      signingKey: new Secret(randomBytes(32).toString("base64url")),
      logger: testLogger(),
      devPages: true,
    });
    const answer = await service.app.inject({ method: "GET", url: OPENAPI_PATH });
    expect(answer.statusCode).toBe(200);
    document = answer.json() as Document;
  });
  afterAll(async () => {
    await service?.close();
  });

  it("is valid OpenAPI 3.1", async () => {
    expect(document.openapi).toBe("3.1.0");
    expect(await new Validator().validate(document as unknown as Record<string, unknown>)).toEqual({
      valid: true,
    });
  });

  it("has every registered route with its methods, each described by its own schema", () => {
    const routes = service.routes.filter((route) => route.method !== "HEAD" && !isPage(route.url));
    // The API itself is there (not an empty list that passes vacuously).
    expect(routes.filter((route) => route.url.startsWith("/v1/")).length).toBeGreaterThanOrEqual(14);
    for (const route of routes) {
      const name = `${route.method} ${route.url}`;
      const operation = document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      expect(operation, `${name} is not in the document`).toBeDefined();
      if (!operation) continue;
      expect(operation.summary, `${name} has no summary`).toEqual(expect.any(String));
      // A route without a response schema is documented by @fastify/swagger as one "Default Response".
      for (const [status, response] of Object.entries(operation.responses))
        expect(response.description, `${name} ${status}`).not.toBe("Default Response");
      // Path parameters come from the route's params schema (with its constraints), not guessed from the URL.
      for (const param of route.url.match(/:[A-Za-z_]+/g) ?? [])
        expect(
          operation.parameters?.some((p) => p.in === "path" && p.name === param.slice(1)),
          `${name} ${param}`,
        ).toBe(true);
      // Every /v1 route answers errors in the one shape, and says so.
      if (route.url.startsWith("/v1/") && route.url !== OPENAPI_PATH)
        for (const status of ["401", "429", "503"])
          expect(
            operation.responses[status]?.content?.["application/json"]?.schema?.$ref,
            `${name} ${status}`,
          ).toBe("#/components/schemas/Error");
    }
    // Nothing documented that is not served.
    const served = new Set(service.routes.map((route) => `${route.method} ${openApiPath(route.url)}`));
    for (const [path, methods] of Object.entries(document.paths))
      for (const method of Object.keys(methods)) expect(served).toContain(`${method.toUpperCase()} ${path}`);
  });

  it("describes the binary routes and the WebSocket as they behave", () => {
    const upload = document.paths["/v1/conversations/{conversation_id}/media"]?.post;
    expect(Object.keys(upload?.requestBody?.content ?? {})).toEqual(["*/*"]);
    expect(upload?.responses["415"]).toBeDefined();
    const media = document.paths["/v1/media/{server_name}/{media_id}"]?.get;
    expect(Object.keys(media?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "206", "304", "404", "416"]),
    );
    expect(media?.parameters?.filter((p) => p.in === "header").map((p) => p.name)).toEqual([
      "range",
      "if-none-match",
    ]);
    expect(media?.parameters?.filter((p) => p.in === "query").map((p) => p.name)).toEqual(["access_token"]);
    // A DELETE may come without a body; fastify would have it required.
    const remove = document.paths["/v1/conversations/{conversation_id}/messages/{message_id}"]?.delete;
    expect(remove?.requestBody?.required).toBe(false);
    expect(JSON.stringify(remove)).not.toContain("x-optional-body");
    const events = document.paths["/v1/events"]?.get;
    expect(events?.parameters?.map((p) => p.name).sort()).toEqual(["access_token", "since"]);
    expect(events?.responses["101"]?.content?.["application/json"]?.schema?.$ref).toBe(
      "#/components/schemas/Event",
    );
    expect(events?.description).toContain(String(CLOSE_SLOW_CONSUMER));
    expect(events?.description).toContain(String(CLOSE_TOO_MANY_FOR_USER));
  });
});
