// The MATRIX_* settings: the names realtime-chat-service already reads (its ConfigMap and its token Secret), which the
// bridge reads too, and how the stack outputs map onto them. infra writes the ConfigMap with `matrixConfigData`, the
// bridge reads the stack outputs through `matrixEnv(matrixSettingsOf(outputs), ...)`, tests start processes with it.
import type { StackOutputs } from "./outputs.ts";

/** What the MATRIX_* settings carry (all but the token). */
export interface MatrixSettings {
  enabled: boolean;
  /** Synapse's client API, for example `http://matrix-synapse:8008`. */
  homeserverUrl: string;
  /** `@nova-service:<serverName>`, asserted with `?user_id=` on every request made with the token. */
  serviceUser: string;
  deviceName: string;
  serverName: string;
}

/** The ConfigMap's keys, by the setting each carries. No secret among them. */
export const MATRIX_CONFIG_NAMES = {
  enabled: "MATRIX_ENABLED",
  homeserverUrl: "MATRIX_HOMESERVER_URL",
  serviceUser: "MATRIX_SERVICE_USER",
  deviceName: "MATRIX_DEVICE_NAME",
  serverName: "MATRIX_SERVER_NAME",
} as const satisfies Record<keyof MatrixSettings, `MATRIX_${string}`>;

/** The token Secret's key: the appservice's `as_token`. */
export const MATRIX_ACCESS_TOKEN = "MATRIX_ACCESS_TOKEN";

export type MatrixConfigName = (typeof MATRIX_CONFIG_NAMES)[keyof MatrixSettings];
export type MatrixSettingName = MatrixConfigName | typeof MATRIX_ACCESS_TOKEN;

/** Every MATRIX_* name: the ConfigMap's, then the Secret's. */
export const MATRIX_SETTING_NAMES: readonly MatrixSettingName[] = [
  ...Object.values(MATRIX_CONFIG_NAMES),
  MATRIX_ACCESS_TOKEN,
];

/** The ConfigMap's data: every value a string (`MATRIX_ENABLED` is `"true"` or `"false"`). */
export function matrixConfigData(settings: MatrixSettings): Record<MatrixConfigName, string> {
  return {
    MATRIX_ENABLED: settings.enabled ? "true" : "false",
    MATRIX_HOMESERVER_URL: settings.homeserverUrl,
    MATRIX_SERVICE_USER: settings.serviceUser,
    MATRIX_DEVICE_NAME: settings.deviceName,
    MATRIX_SERVER_NAME: settings.serverName,
  };
}

/** The whole environment a process of the backend reads: the ConfigMap's data and the token Secret's. */
export function matrixEnv(settings: MatrixSettings, accessToken: string): Record<MatrixSettingName, string> {
  return { ...matrixConfigData(settings), [MATRIX_ACCESS_TOKEN]: accessToken };
}

/** The settings a stack's outputs stand for: the program writes the ConfigMap from the same values. */
export function matrixSettingsOf(outputs: StackOutputs): MatrixSettings {
  return {
    enabled: outputs.matrixEnabled,
    homeserverUrl: outputs.homeserverUrl,
    serviceUser: outputs.serviceUser,
    deviceName: outputs.deviceName,
    serverName: outputs.serverName,
  };
}
