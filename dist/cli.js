#!/usr/bin/env node
import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);
import {
  INPUT_NAMES,
  UserError,
  checkImages,
  describeResult,
  failureMessage,
  githubContext,
  inert,
  outputsOf,
  readPlanFile,
  readSetup,
  runMerges
} from "./chunks/chunk-Y4OZ7EVT.js";
import "./chunks/chunk-25FPQGSP.js";
import "./chunks/chunk-TXA32J6B.js";

// src/version.ts
var VERSION = "0.1.0";

// src/cli/args.ts
var UsageError = class extends UserError {
};
var BOOLEAN_INPUTS = [
  "dry-run",
  "append",
  "copy-referrers",
  "preserve-digest",
  "allow-extra-platforms",
  "github-annotations"
];
var LIST_INPUTS = [
  "tags",
  "sources",
  "platforms",
  "annotations",
  "require-platforms",
  "insecure-registries",
  "registry-auth"
];
var FLAGS = ["json", "help", "version", "verbose", "password-stdin", "registry-auth-stdin"];
var SECRET_INPUTS = ["password", "registry-auth", "github-token"];
var INPUTS = INPUT_NAMES.filter((n) => n !== "plan");
function parseArgs(argv) {
  const options = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  if (options.includes("--help") || options.includes("-h")) return { kind: "help" };
  const inputs = {};
  const flags = /* @__PURE__ */ new Set();
  const sources = [];
  let plan;
  const secrets = [];
  const set = (name, value) => {
    if (name in inputs && !LIST_INPUTS.includes(name))
      throw new UsageError(`option --${name} is given more than once`);
    inputs[name] = name in inputs ? `${inputs[name]}
${value}` : value;
    if (SECRET_INPUTS.includes(name) && !secrets.includes(name)) secrets.push(name);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = (option) => {
      if (i + 1 >= argv.length) throw new UsageError(`option ${option} needs a value`);
      return argv[++i];
    };
    if (arg === "--") {
      sources.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.add("help");
      continue;
    }
    if (arg === "-t") {
      set("tags", next("-t"));
      continue;
    }
    if (arg.startsWith("-t") && !arg.startsWith("--")) {
      set("tags", arg.slice(arg.startsWith("-t=") ? 3 : 2));
      continue;
    }
    if (!arg.startsWith("--")) {
      if (arg.startsWith("-") && arg !== "-")
        throw new UsageError(`unknown option ${arg.slice(0, 2)}`);
      sources.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? void 0 : arg.slice(eq + 1);
    if (FLAGS.includes(name)) {
      if (inline !== void 0) throw new UsageError(`option --${name} takes no value`);
      flags.add(name);
    } else if (name.startsWith("no-") && BOOLEAN_INPUTS.includes(name.slice(3))) {
      if (inline !== void 0) throw new UsageError(`option --${name} takes no value`);
      set(name.slice(3), "false");
    } else if (BOOLEAN_INPUTS.includes(name)) {
      const word = argv[i + 1];
      set(name, inline ?? (/^(true|false)$/i.test(word ?? "") ? argv[++i] : "true"));
    } else if (name === "plan") {
      if (plan !== void 0) throw new UsageError("option --plan is given more than once");
      plan = inline ?? next("--plan");
    } else if (INPUTS.includes(name)) {
      set(name, inline ?? next(`--${name}`));
    } else {
      const near = nearest(name, [...INPUTS, ...FLAGS, "plan"]);
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ""}`);
    }
  }
  if (flags.has("help")) return { kind: "help" };
  if (flags.has("version")) return { kind: "version" };
  if (sources.length) set("sources", sources.join("\n"));
  const stdin = stdinUse(flags, plan);
  if (plan !== void 0) {
    const around = ["tags", "sources", "digests-dir", "metadata-json"].filter((n) => n in inputs);
    if (around.length)
      throw new UsageError(
        `--plan gives each image its tags and sources: ${around.map((n) => n === "sources" ? "sources" : `--${n}`).join(", ")} cannot be given with it`
      );
  }
  if (stdin && stdin !== "plan" && stdin in inputs)
    throw new UsageError(`--${stdin} and --${stdin}-stdin: give one of them`);
  return {
    kind: "run",
    inputs,
    secretsOnCommandLine: secrets,
    plan,
    json: flags.has("json"),
    verbose: flags.has("verbose"),
    stdin
  };
}
function stdinUse(flags, plan) {
  const uses = [];
  if (flags.has("password-stdin")) uses.push("password");
  if (flags.has("registry-auth-stdin")) uses.push("registry-auth");
  if (plan === "-") uses.push("plan");
  if (uses.length > 1)
    throw new UsageError(
      `stdin can hold one thing only, but ${uses.map((u) => u === "plan" ? "--plan -" : `--${u}-stdin`).join(" and ")} both read it`
    );
  return uses[0];
}
function nearest(name, names) {
  let best;
  for (const n of names) {
    const d = distance(name, n);
    if (d <= Math.max(2, Math.floor(n.length / 4)) && (!best || d < best.d)) best = { n, d };
  }
  return best?.n;
}
function distance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length];
}

// src/cli/help.ts
var USAGE = `Usage:
  multiarch-merge -t TAG [-t TAG ...] [OPTIONS] SOURCE...
  multiarch-merge --plan FILE [OPTIONS]

Merges per-architecture images into one multi-arch index and pushes it under every tag,
over the registry API (no docker daemon). SOURCE is repo@sha256:..., repo:tag, or a bare
sha256:... digest (looked up in --source-repository, else in the first tag's repository).

Every input of the GitHub Action is an option of the same name; an input may also come from
the environment as MULTIARCH_MERGE_<NAME> (MULTIARCH_MERGE_DRY_RUN=true), which an option
overrides. Options that take a list may be given more than once.

Images:
  -t, --tags TAG               a tag to push the index to (repeatable)
  --sources REF                a source, as well as the positional ones (repeatable)
  --digests-dir DIR            a folder of files named by digest, each a source
  --source-repository REPO     where bare digests are looked up
  --metadata-json JSON         docker/metadata-action's json output, for the tags
  --plan FILE                  a release plan (YAML or JSON; - for stdin): several images,
                               all or nothing; no -t or sources then

The index:
  --format auto|oci|docker     index media type (default auto)
  --attestations MODE          keep, strip, strip-provenance, referrers or
                               referrers-strip-provenance (default keep)
  --platforms LIST             only these platforms (e.g. linux/amd64,linux/arm64)
  --on-duplicate MODE          error, first or last, for two images of one platform
  --annotations KEY=VALUE      an annotation (repeatable; index:, manifest-descriptor: and
                               manifest-descriptor[linux/arm64]: prefixes as docker/metadata-action)
  --github-annotations         add source and revision annotations from GITHUB_* variables
  --require-platforms LIST     fail unless these platforms are all there
  --allow-extra-platforms      with --require-platforms, allow others too
  --append                     add to what the first tag holds instead of replacing it
  --preserve-digest            promote one source index to every tag byte for byte
  --copy-referrers             copy signatures and other referrers of the images too

Tags:
  --on-conflict fail|skip|warn what to do when a registry refuses to move a tag
  --dry-run                    plan and print, write nothing

Registries:
  --username USER              username for the tags' registries
  --password PASS              its password (seen by other users of this machine: prefer
                               --password-stdin or MULTIARCH_MERGE_PASSWORD)
  --password-stdin             read the password from stdin
  --registry-auth REG=USER:PASS  credentials for one more registry (repeatable; prefer
                               --registry-auth-stdin or MULTIARCH_MERGE_REGISTRY_AUTH)
  --registry-auth-stdin        read registry-auth lines from stdin
  --github-token TOKEN         token for ghcr.io when no other credential is known
                               (prefer MULTIARCH_MERGE_GITHUB_TOKEN)
  --insecure-registries LIST   hosts whose TLS certificate is not verified
  --max-concurrency N          requests in flight at once (default 32)
  --retries N                  retries of a failed request (default 10)
  --timeout SECONDS            the whole run's time budget (default 900)
  Credentials also come from the docker config (DOCKER_CONFIG, ~/.docker/config.json).

Output:
  --json                       print one JSON object on stdout: the action's outputs
                               (with --plan: {"results": [one object per image]})
  --verbose                    every log line on stderr, not only phases and warnings
  -h, --help                   this text
  --version                    the version

Without --json, stdout gets the index digest (with --plan, one line per image).
Exit status: 0 merged, 1 the merge failed (nothing half-pushed), 2 the command line or an
input is wrong (nothing was asked of any registry).
`;

// src/cli/log.ts
var CliLog = class {
  constructor(err, verbose) {
    this.err = err;
    this.verbose = verbose;
  }
  err;
  verbose;
  secrets = /* @__PURE__ */ new Set();
  phase;
  responses = 0;
  shown = 0;
  statusShown = false;
  /** A value never to be printed. */
  mask(secret) {
    if (secret) this.secrets.add(secret);
  }
  info(message) {
    if (this.verbose) this.line(message);
  }
  warning(message) {
    this.line(`warning: ${message}`);
  }
  debug() {
  }
  error(message) {
    this.line(`error: ${message}`);
  }
  /** A line whatever the verbosity (the result of the run). */
  always(message) {
    this.line(message);
  }
  async group(name, fn) {
    this.line(`${name}...`);
    this.phase = name;
    try {
      return await fn();
    } finally {
      this.phase = void 0;
      this.clearStatus();
    }
  }
  /** A response arrived: the terminal's status line counts it. */
  response() {
    this.responses++;
    if (!this.err.isTTY || !this.phase) return;
    if (this.responses - this.shown < 20 && this.statusShown) return;
    this.shown = this.responses;
    const n = this.responses;
    this.err.write(
      `\r\x1B[2K  ${this.clean(this.phase)}: ${n} request${n === 1 ? "" : "s"} answered`
    );
    this.statusShown = true;
  }
  clearStatus() {
    if (this.statusShown) this.err.write("\r\x1B[2K");
    this.statusShown = false;
  }
  clean(text) {
    let out = text;
    for (const s of this.secrets) out = out.split(s).join("***");
    return inert(out);
  }
  line(text) {
    this.clearStatus();
    this.err.write(`${this.clean(text)}
`);
  }
};

// src/cli/main.ts
var EXIT = { ok: 0, failed: 1, usage: 2 };
async function runCli(argv, io) {
  const start = Date.now();
  let command;
  try {
    command = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.stderr.write(`multiarch-merge: ${inert(e.message)}
Run multiarch-merge --help for usage.
`);
    return EXIT.usage;
  }
  if (command.kind === "help") {
    io.stdout.write(USAGE);
    return EXIT.ok;
  }
  if (command.kind === "version") {
    io.stdout.write(`${VERSION}
`);
    return EXIT.ok;
  }
  const log = new CliLog(io.stderr, command.verbose);
  let setup;
  try {
    setup = await readCommand(command, io, log);
    checkImages(setup.images.map((image) => ({ ...image, dryRun: setup.run.dryRun })));
  } catch (e) {
    log.error(failureMessage(e));
    return e instanceof UserError ? EXIT.usage : EXIT.failed;
  }
  try {
    const results = await runMerges(
      setup,
      { log, onSecret: (s) => log.mask(s), onResponse: () => log.response() },
      start
    );
    const { dryRun } = setup.run;
    const outputs = results.map((r) => outputsOf(r, dryRun));
    for (const [i, r] of results.entries())
      log.always((setup.fromPlan ? `image ${i + 1}: ` : "") + describeResult(r, dryRun));
    if (command.json)
      io.stdout.write(`${JSON.stringify(setup.fromPlan ? { results: outputs } : outputs[0])}
`);
    else io.stdout.write(outputs.map((o) => `${o.digest}
`).join(""));
    return EXIT.ok;
  } catch (e) {
    log.error(failureMessage(e));
    return EXIT.failed;
  }
}
async function readCommand(command, io, log) {
  const inputs = { ...command.inputs };
  for (const name of command.secretsOnCommandLine) {
    log.warning(
      `--${name} on the command line can be read by other users of this machine: use ${name === "github-token" ? "" : `--${name}-stdin or `}MULTIARCH_MERGE_${envName(name)} instead`
    );
  }
  let plan;
  if (command.stdin) {
    const text = await io.readStdin();
    if (command.stdin === "plan") plan = { name: "plan (stdin)", text };
    else inputs[command.stdin] = command.stdin === "password" ? text.replace(/\r?\n$/, "") : text;
  }
  if (command.plan !== void 0 && !plan)
    plan = { name: `plan ${command.plan}`, text: readPlanFile(command.plan, "--plan") };
  const get = (name) => inputs[name] ?? io.env[`MULTIARCH_MERGE_${envName(name)}`] ?? "";
  return readSetup(get, (s) => log.mask(s), io.env, githubContext(io.env), plan);
}
function envName(input) {
  return input.toUpperCase().replace(/-/g, "_");
}

// src/cli.ts
process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  readStdin: async () => {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return Buffer.concat(chunks).toString("utf8");
  }
});
