// The API's documentation: public (no token), the only /v1 routes outside the authenticated context. The OpenAPI
// document (built by @fastify/swagger from the routes' schemas, see openapi.ts) is always served; the browsable
// reference (Swagger UI over the same document, its assets served from the package, no CDN) only where the dev pages
// are on (BRIDGE_DEV_PAGES: local and staging).
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";

export const OPENAPI_PATH = "/v1/openapi.json";
export const DOCS_PATH = "/v1/docs";

export const docsRoutes: FastifyPluginAsyncZod<{ devPages: boolean }> = async (app, { devPages }) => {
  app.get(
    OPENAPI_PATH,
    {
      schema: {
        summary: "This document (OpenAPI 3.1)",
        security: [],
        response: { 200: z.record(z.string(), z.unknown()).meta({ description: "OpenAPI 3.1" }) },
      },
    },
    // Built once, on the first request (every route is registered by then), and kept by @fastify/swagger.
    async () => app.swagger() as unknown as Record<string, unknown>,
  );
  if (!devPages) return;
  await app.register(swaggerUi, {
    routePrefix: DOCS_PATH,
    uiConfig: { docExpansion: "list", deepLinking: true, tryItOutEnabled: false },
  });
};
