// For the tests of the rules and of the policy pack: a Deployment's pod that passes every rule. Each negative test
// breaks one thing in a fresh copy.

export const goodContainer = () => ({
  name: "app",
  image: "ghcr.io/example/app:v1.2.3",
  resources: { limits: { memory: "256Mi" } },
  readinessProbe: { httpGet: { path: "/ready", port: 8080 } },
  livenessProbe: { httpGet: { path: "/live", port: 8080 } },
  securityContext: { allowPrivilegeEscalation: false },
  env: [
    { name: "APP_PORT", value: "8080" },
    { name: "APP_PASSWORD_FILE", value: "/secrets/password" },
  ],
});

export const goodPod = () => ({
  securityContext: { runAsNonRoot: true, runAsUser: 1000 },
  containers: [goodContainer()],
});
