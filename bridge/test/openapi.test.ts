// The OpenAPI document is generated from the routes themselves: every route fastify registered is in it with its
// methods, its own schema (a route added without one fails here) and its security, the security as the route
// enforces it (checked by calling each operation with each kind of token), and the document is valid OpenAPI 3.1.
// No homeserver is needed: the document is the service's own (built without a bridge, as a disabled integration:
// a request its authentication lets through is answered 503 by the next hook, before validation or handler).
import { randomBytes } from "node:crypto";
import { testLogger } from "@nova-matrix/dev/harness/test-stack";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { buildService, type Service } from "../src/service/app.ts";
import { CLOSE_SLOW_CONSUMER, CLOSE_TOO_MANY_FOR_USER } from "../src/service/event-stream.ts";
import { CONSOLE_PATH } from "../src/service/plugins/console.ts";
import { DOCS_PATH, OPENAPI_PATH } from "../src/service/plugins/docs.ts";
import { signUserToken } from "../src/service/tokens.ts";

interface Operation {
  summary?: string;
  security?: Record<string, string[]>[];
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
  security?: Record<string, string[]>[];
  components: { securitySchemes: Record<string, { type: string; in?: string; name?: string }> };
  paths: Record<string, Record<string, Operation>>;
}

/** fastify's `/v1/media/:server_name` as OpenAPI's `/v1/media/{server_name}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, "{$1}");
/** Pages, not API (the console and Swagger UI's own routes), deliberately hidden from the document. */
const isPage = (url: string) => url.startsWith(CONSOLE_PATH) || url.startsWith(DOCS_PATH);

describe("the OpenAPI document, generated from the route definitions", () => {
  let service: Service;
  let document: Document;
  const signingKey = new Secret(randomBytes(32).toString("base64url"));

  beforeAll(async () => {
    service = await buildService({
      idle: "disabled",
      apiToken: new Secret(randomBytes(32).toString("base64url")),
      signingKey,
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

  it("states every /v1 route's security, as the route enforces it (only the document itself is public)", async () => {
    const userToken = signUserToken(signingKey, "alice", Math.floor(Date.now() / 1000) + 600);
    const v1 = service.routes.filter((route) => route.method !== "HEAD" && route.url.startsWith("/v1/"));
    const publicOnes: string[] = [];
    for (const route of v1.filter((r) => !isPage(r.url))) {
      const name = `${route.method} ${route.url}`;
      const operation = document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
      // Stated on the operation itself, not left to the document's default.
      const security = operation?.security;
      expect(security, `${name} states no security`).toBeDefined();
      if (!security) continue;
      const schemes = security.flatMap((requirement) => Object.keys(requirement));
      for (const scheme of schemes) expect(document.components.securitySchemes).toHaveProperty(scheme);
      if (security.length === 0) publicOnes.push(route.url);
      // What the route does with each kind of credential (path parameters: any value, authentication comes first).
      const url = route.url.replace(/:[A-Za-z_]+/g, "x");
      const call = async (headers: Record<string, string>, query = "") =>
        (await service.app.inject({ method: route.method as "GET", url: `${url}${query}`, headers }))
          .statusCode;
      const withoutToken = await call({});
      const withUserToken = await call({ authorization: `Bearer ${userToken}` });
      const inQuery = await call({}, `?access_token=${encodeURIComponent(userToken)}`);
      if (security.length === 0) {
        expect(withoutToken, `${name} is documented as public`).toBe(200);
        continue;
      }
      // A secured operation: refused without a token; a user token gets past authentication (503 here: no bridge)
      // exactly where the document lists `userToken`, and a token in the query only where it lists `queryToken`.
      expect(withoutToken, `${name} without a token`).toBe(401);
      expect(schemes).toContain("serviceToken");
      expect(withUserToken, `${name} with a user token`).toBe(schemes.includes("userToken") ? 503 : 403);
      expect(inQuery, `${name} with ?access_token=`).toBe(
        schemes.includes("queryToken") ? withUserToken : 401,
      );
    }
    expect(publicOnes).toEqual([OPENAPI_PATH]);
    // The document's default (for an operation that stated none) is the service's token, not public.
    expect(document.security).toEqual([{ serviceToken: [] }]);
    // The query token is the query parameter the routes read.
    expect(document.components.securitySchemes.queryToken).toMatchObject({
      in: "query",
      name: "access_token",
    });
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
    // ?access_token= is the `queryToken` security scheme, not repeated as a parameter (@fastify/swagger drops it).
    expect(media?.parameters?.filter((p) => p.in === "query").map((p) => p.name)).toEqual([]);
    expect(media?.security).toContainEqual({ queryToken: [] });
    // A DELETE may come without a body; fastify would have it required.
    const remove = document.paths["/v1/conversations/{conversation_id}/messages/{message_id}"]?.delete;
    expect(remove?.requestBody?.required).toBe(false);
    expect(JSON.stringify(remove)).not.toContain("x-optional-body");
    const events = document.paths["/v1/events"]?.get;
    // One route: the socket, or without an upgrade one page of the log (`limit` is the page's).
    expect(events?.parameters?.map((p) => p.name)).toEqual(["since", "limit"]);
    expect(Object.keys(events?.responses ?? {})).toEqual(expect.arrayContaining(["101", "200", "410"]));
    expect(events?.security).toContainEqual({ queryToken: [] });
    expect(events?.responses["101"]?.content?.["application/json"]?.schema?.$ref).toBe(
      "#/components/schemas/Event",
    );
    expect(events?.description).toContain(String(CLOSE_SLOW_CONSUMER));
    expect(events?.description).toContain(String(CLOSE_TOO_MANY_FOR_USER));
  });
});
