// The API's documentation: public (no token), the only /v1 routes outside the authenticated context. The OpenAPI
// document is always served; the browsable reference (Swagger UI, its assets served from the package, no CDN) only
// where the dev pages are on (BRIDGE_DEV_PAGES: local and staging).
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyPluginAsync } from "fastify";
import { openApiDocument } from "../openapi.ts";

export const OPENAPI_PATH = "/v1/openapi.json";
export const DOCS_PATH = "/v1/docs";

export const docsRoutes: FastifyPluginAsync<{ devPages: boolean }> = async (app, { devPages }) => {
  const document = openApiDocument();
  app.get(OPENAPI_PATH, async () => document);
  if (!devPages) return;
  // The same document, handed to Swagger UI as it is (static mode: nothing is re-derived from the routes here).
  // The document is OpenAPI 3.1; the plugin's types name 2.0 and 3.0 only, and it serves 3.1 as it is.
  await app.register(swagger, { mode: "static", specification: { document: document as never } });
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { docExpansion: "list", deepLinking: true, tryItOutEnabled: false },
  });
};
