// Which Synapse the stacks deploy, and how the harness's Synapse may differ from it. Pure: the tests, the pin
// command and the component read it.
//
// Debian's unstable suite carries only its newest matrix-synapse, so a new machine builds the test harness with
// whatever version is current there. The tests run the rendered config on that Synapse; a harness within the
// window below passes (with a printed notice), one outside it fails and names the command that moves the pin.

/** The image tag the stacks deploy. Moved by `npm run pin-synapse`, never by hand (the places it is written down:
 * PINNED_PLACES). */
export const SYNAPSE_VERSION = "1.160.0";
export const SYNAPSE_IMAGE = `ghcr.io/element-hq/synapse:v${SYNAPSE_VERSION}`;

export interface SynapseVersion {
  major: number;
  minor: number;
  patch: number;
}

/** `1.160.0`, a Debian package version (`1.160.0-1`, `1.161.0~rc1-2`) or an image tag (`v1.160.0`). */
export function parseSynapseVersion(text: string): SynapseVersion {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(text.trim());
  if (!match)
    throw new Error(`"${text}" is not a Synapse version (expected major.minor.patch, such as 1.160.0)`);
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

export const formatSynapseVersion = (v: SynapseVersion) => `${v.major}.${v.minor}.${v.patch}`;

export type HarnessVerdict =
  | { kind: "pinned"; message: string }
  | { kind: "within-window"; message: string }
  | { kind: "outside-window"; message: string };

/**
 * The window: the pinned minor version or the next one (Synapse releases a minor version about every two weeks;
 * its config and metrics change slowly, and the rendered config is still run on the harness's Synapse). An older
 * harness is outside: the tests would vouch for a Synapse older than the one deployed.
 */
export function judgeHarnessVersion(harness: string, pinned: string = SYNAPSE_VERSION): HarnessVerdict {
  const h = parseSynapseVersion(harness);
  const p = parseSynapseVersion(pinned);
  const move = "run `npm run pin-synapse` to move the image tag to it (see README, 'Synapse's version')";
  if (h.major === p.major && h.minor === p.minor && h.patch === p.patch) {
    return { kind: "pinned", message: `the harness runs the pinned Synapse ${pinned}` };
  }
  if (
    h.major === p.major &&
    (h.minor === p.minor || h.minor === p.minor + 1) &&
    !(h.minor === p.minor && h.patch < p.patch)
  ) {
    return {
      kind: "within-window",
      message: `notice: the harness runs Synapse ${formatSynapseVersion(h)}, the stacks pin ${pinned} (within the window of the pinned minor version and the next); ${move}`,
    };
  }
  return {
    kind: "outside-window",
    message: `the harness runs Synapse ${formatSynapseVersion(h)}, the stacks pin ${pinned}: outside the window (the pinned minor version or the next); ${move}, or rebuild the harness on the pinned version`,
  };
}

/** Every place the pinned version is written down, with the text that carries it. */
export const PINNED_PLACES: readonly { file: string; pattern: (version: string) => string }[] = [
  { file: "infra/synapse/version.ts", pattern: (v) => `export const SYNAPSE_VERSION = "${v}";` },
  { file: "README.md", pattern: (v) => `\`ghcr.io/element-hq/synapse:v${v}\`` },
];

/**
 * Moves every pinned place from `from` to `to`. `files` maps a path to its text; the answer holds the changed
 * texts. Throws when a place does not carry `from` (a hand edit drifted), so a move is all or nothing.
 */
export function movePin(files: ReadonlyMap<string, string>, from: string, to: string): Map<string, string> {
  parseSynapseVersion(to);
  const changed = new Map<string, string>();
  for (const place of PINNED_PLACES) {
    const text = changed.get(place.file) ?? files.get(place.file);
    if (text === undefined)
      throw new Error(`${place.file} is missing: cannot move the pinned Synapse version`);
    const before = place.pattern(from);
    if (!text.includes(before)) {
      throw new Error(
        `${place.file} does not carry ${before}: set it back to the pinned ${from}, then move the pin`,
      );
    }
    changed.set(place.file, text.replaceAll(before, place.pattern(to)));
  }
  return changed;
}
