// The API's documentation: public (no token), the only /v1 routes outside the authenticated context.
import type { FastifyPluginAsync } from "fastify";
import { openApiDocument } from "../openapi.ts";

export const OPENAPI_PATH = "/v1/openapi.json";

export const docsRoutes: FastifyPluginAsync = async (app) => {
  const document = openApiDocument();
  app.get(OPENAPI_PATH, async () => document);
};
