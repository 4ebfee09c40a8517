#!/usr/bin/env node
"use strict";
var __create = Object.create;
var __defProp = Object.defineProperty;
var __getOwnPropDesc = Object.getOwnPropertyDescriptor;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __getProtoOf = Object.getPrototypeOf;
var __hasOwnProp = Object.prototype.hasOwnProperty;
var __copyProps = (to, from, except, desc) => {
  if (from && typeof from === "object" || typeof from === "function") {
    for (let key of __getOwnPropNames(from))
      if (!__hasOwnProp.call(to, key) && key !== except)
        __defProp(to, key, { get: () => from[key], enumerable: !(desc = __getOwnPropDesc(from, key)) || desc.enumerable });
  }
  return to;
};
var __toESM = (mod, isNodeMode, target) => (target = mod != null ? __create(__getProtoOf(mod)) : {}, __copyProps(
  // If the importer is in node compatibility mode or this is not an ESM
  // file that has been converted to a CommonJS file using a Babel-
  // compatible transform (i.e. "__esModule" has not been set), then set
  // "default" to the CommonJS "module.exports" for node compatibility.
  isNodeMode || !mod || !mod.__esModule ? __defProp(target, "default", { value: mod, enumerable: true }) : target,
  mod
));

// src/core/inert.ts
var CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
function escape(c) {
  const code = c.charCodeAt(0);
  return code <= 255 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
}
function inert(text) {
  return text.replace(CONTROL, escape).replace(/##\[/g, "#\\x23[").replace(/^(\s*):(?=:)/u, "$1\\x3a");
}

// src/errors.ts
var UserError = class extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
};

// src/inputs.ts
var import_node_fs = require("node:fs");
var import_node_path = require("node:path");

// lazy:crypto
var loaded;
var crypto = () => loaded ??= require("node:crypto");
var createHash = (...a) => crypto().createHash(...a);

// src/core/digest.ts
var DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
function sha256(data) {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}
function digestOf(data, algorithm) {
  return `${algorithm}:` + createHash(algorithm).update(data).digest("hex");
}
function isDigest(value) {
  return DIGEST_RE.test(value);
}
function digestProblem(value) {
  if (isDigest(value)) return void 0;
  const m = /^([A-Za-z0-9+._-]+):(.*)$/.exec(value);
  if (!m) return 'a digest is "sha256:" followed by 64 hex characters';
  const [, algorithm, hex] = m;
  if (algorithm !== "sha256" && algorithm !== "sha512")
    return `unsupported digest algorithm "${algorithm}" (use sha256)`;
  const want = algorithm === "sha256" ? 64 : 128;
  if (/[A-F]/.test(hex)) return "digest hex must be lowercase";
  if (!/^[a-f0-9]*$/.test(hex)) return "digest contains characters that are not hex";
  return `${algorithm} digest must have ${want} hex characters, got ${hex.length}`;
}
function verifyDigest(data, expected, what) {
  if (!isDigest(expected)) {
    throw new Error(`${what}: ${JSON.stringify(expected)} is not a digest this action accepts`);
  }
  const algorithm = expected.split(":")[0];
  const actual = digestOf(data, algorithm);
  if (actual !== expected) {
    throw new Error(
      `${what}: content does not match its digest (asked for ${expected}, received content hashing to ${actual})`
    );
  }
}

// src/core/mediatypes.ts
var OCI_INDEX = "application/vnd.oci.image.index.v1+json";
var OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
var DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
var DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
var DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
var DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";
var MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", ");
function isIndexType(mediaType) {
  return mediaType === OCI_INDEX || mediaType === DOCKER_LIST;
}
function isImageManifestType(mediaType) {
  return mediaType === OCI_MANIFEST || mediaType === DOCKER_MANIFEST;
}
function isSchema1Type(mediaType) {
  return mediaType === DOCKER_SCHEMA1 || mediaType === DOCKER_SCHEMA1_SIGNED;
}

// src/core/manifest.ts
var ATTESTATION_TYPE_KEY = "vnd.docker.reference.type";
var ATTESTATION_DIGEST_KEY = "vnd.docker.reference.digest";
var ATTESTATION_MANIFEST = "attestation-manifest";
var MANIFEST_TYPES = /* @__PURE__ */ new Set([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]);
var MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
var ManifestError = class extends UserError {
};
function schema1Error(where) {
  return new ManifestError(
    `${where ? `${where}: ` : ""}this is a Docker schema 1 manifest, which cannot be part of a multi-arch index; rebuild and push the image with a current Docker or buildah`
  );
}
function parseManifest(raw, where) {
  let doc;
  try {
    doc = JSON.parse(Buffer.from(raw.bytes).toString("utf8"));
  } catch (e) {
    throw new ManifestError(
      `${where}: the registry returned a manifest that is not valid JSON (${e.message})`,
      { cause: e }
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new ManifestError(`${where}: the registry returned a manifest that is not a JSON object`);
  }
  const m = doc;
  if (m.schemaVersion === 1 || isSchema1Type(raw.mediaType)) throw schema1Error(where);
  if (m.schemaVersion !== 2) {
    throw new ManifestError(
      `${where}: unsupported manifest schemaVersion ${JSON.stringify(m.schemaVersion)}`
    );
  }
  const declared = typeof m.mediaType === "string" ? m.mediaType : void 0;
  let mediaType = declared ?? raw.mediaType;
  if (!MANIFEST_TYPES.has(mediaType)) {
    if (Array.isArray(m.manifests)) mediaType = OCI_INDEX;
    else if (m.config && Array.isArray(m.layers)) mediaType = OCI_MANIFEST;
  }
  if (isIndexType(mediaType)) {
    if (!Array.isArray(m.manifests)) {
      throw new ManifestError(`${where}: index has no "manifests" list`);
    }
    ;
    m.manifests.forEach((d, i) => checkDescriptor(d, `${where}: entry ${i}`));
    if (m.subject !== void 0) checkDescriptor(m.subject, `${where}: subject`);
    return { kind: "index", mediaType, index: m };
  }
  if (isImageManifestType(mediaType)) {
    if (!m.config || !Array.isArray(m.layers)) {
      throw new ManifestError(`${where}: image manifest lacks "config" or "layers"`);
    }
    checkDescriptor(m.config, `${where}: config`);
    m.layers.forEach((d, i) => checkDescriptor(d, `${where}: layer ${i}`));
    if (m.subject !== void 0) checkDescriptor(m.subject, `${where}: subject`);
    return { kind: "image", mediaType, manifest: m };
  }
  throw new ManifestError(`${where}: unsupported manifest media type "${mediaType}"`);
}
function checkDescriptor(d, where) {
  const x = d;
  if (!x || typeof x !== "object" || typeof x.mediaType !== "string" || typeof x.digest !== "string" || typeof x.size !== "number" || !Number.isSafeInteger(x.size) || x.size < 0) {
    throw new ManifestError(`${where}: malformed descriptor ${JSON.stringify(d).slice(0, 300)}`);
  }
  const problem = digestProblem(x.digest);
  if (problem) {
    throw new ManifestError(
      `${where} has the digest ${JSON.stringify(x.digest)}, which is refused: ${problem}`
    );
  }
  const platform = x.platform === void 0 ? void 0 : platformProblem(x.platform);
  if (platform) throw new ManifestError(`${where} (${x.digest}) is not usable: ${platform}`);
}
function isAttestationDescriptor(d) {
  return d.annotations?.[ATTESTATION_TYPE_KEY] === ATTESTATION_MANIFEST;
}
function isManifestDescriptor(d) {
  return MANIFEST_TYPES.has(d.mediaType);
}
function looksLikeBuildCache(index) {
  return index.manifests.length > 0 && index.manifests.some((d) => !isManifestDescriptor(d)) && index.manifests.every((d) => !isAttestationDescriptor(d));
}
function blobsOf(m) {
  const seen = /* @__PURE__ */ new Set();
  const out = [];
  for (const d of [m.config, ...m.layers]) {
    if (d.urls && d.urls.length > 0 && /foreign|nondistributable/.test(d.mediaType)) continue;
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push(d);
  }
  return out;
}

// src/core/platform.ts
var NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
var VERSION_RE = /^[A-Za-z0-9.]{1,128}$/;
function platformProblem(p) {
  const bad = (field, value, what) => `its platform field ${field} is ${JSON.stringify(value)}, which is not ${what}`;
  for (const field of ["os", "architecture"]) {
    if (typeof p[field] !== "string" || !NAME_RE.test(p[field]))
      return bad(field, p[field], "letters, digits and ._-");
  }
  if (p.variant != null && p.variant !== "" && (typeof p.variant !== "string" || !NAME_RE.test(p.variant)))
    return bad("variant", p.variant, "letters, digits and ._-");
  const version = p["os.version"];
  if (version != null && version !== "" && (typeof version !== "string" || !VERSION_RE.test(version)))
    return bad("os.version", version, "letters, digits and dots");
  const features = p["os.features"];
  if (features != null && (!Array.isArray(features) || !features.every((f) => typeof f === "string" && VERSION_RE.test(f))))
    return bad("os.features", features, "a list of letters, digits and dots");
  return void 0;
}
function formatPlatform(p) {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}
function formatPlatformFull(p) {
  const base = formatPlatform(p);
  return p["os.version"] ? `${base}:${p["os.version"]}` : base;
}
function isUnknownPlatform(p) {
  return !p || p.os === "unknown" && p.architecture === "unknown";
}
function normalizePlatform(p) {
  let os = p.os.toLowerCase();
  if (os === "macos") os = "darwin";
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? "";
  switch (architecture) {
    case "i386":
      architecture = "386";
      variant = "";
      break;
    case "x86_64":
    case "x86-64":
    case "amd64":
      architecture = "amd64";
      if (variant === "v1") variant = "";
      break;
    case "aarch64":
    case "arm64":
      architecture = "arm64";
      if (variant === "8" || variant === "v8" || variant === "v8.0") variant = "";
      break;
    case "armhf":
      architecture = "arm";
      variant = "v7";
      break;
    case "armel":
      architecture = "arm";
      variant = "v6";
      break;
    case "arm":
      if (variant === "" || variant === "7") variant = "v7";
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  const out = { os, architecture };
  if (variant) out.variant = variant;
  if (p["os.version"]) out["os.version"] = p["os.version"];
  return out;
}
function platformKey(p) {
  return formatPlatformFull(normalizePlatform(p));
}
function parsePlatform(spec) {
  const s = spec.trim();
  let osVersion;
  let main = s;
  const colon = s.indexOf(":");
  if (colon !== -1) {
    osVersion = s.slice(colon + 1);
    main = s.slice(0, colon);
  }
  const parts = main.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[A-Za-z0-9_.-]+$/.test(x))) {
    return `"${spec}" is not a platform (expected os/arch or os/arch/variant, e.g. linux/arm64)`;
  }
  const p = { os: parts[0], architecture: parts[1] };
  if (parts[2]) p.variant = parts[2];
  if (osVersion) p["os.version"] = osVersion;
  return p;
}
function platformMatches(filter, image) {
  const f = normalizePlatform(filter);
  const i = normalizePlatform(image);
  if (f.os !== i.os || f.architecture !== i.architecture) return false;
  if ((f.variant ?? "") !== (i.variant ?? "")) return false;
  if (f["os.version"] && !(i["os.version"] ?? "").startsWith(f["os.version"])) return false;
  return true;
}
function platformFromConfig(config, where) {
  const p = configPlatform(config, where);
  if (p === "not json") throw new ManifestError(`${where}: the image config is not valid JSON`);
  if (!p) {
    throw new ManifestError(
      `${where}: the image config names no os/architecture, so it is not a runnable image`
    );
  }
  return p;
}
function configPlatform(config, where) {
  let doc;
  try {
    doc = JSON.parse(Buffer.from(config).toString("utf8"));
  } catch {
    return "not json";
  }
  if (typeof doc !== "object" || doc === null) return void 0;
  const { os, architecture, variant } = doc;
  if (typeof os !== "string" || typeof architecture !== "string" || !os || !architecture)
    return void 0;
  const p = { architecture, os };
  if (doc["os.version"] != null && doc["os.version"] !== "")
    p["os.version"] = doc["os.version"];
  const features = doc["os.features"];
  if (Array.isArray(features) && features.length) p["os.features"] = features;
  if (variant != null && variant !== "") p.variant = variant;
  const problem = platformProblem(p);
  if (problem) throw new ManifestError(`${where}: the image config is not usable: ${problem}`);
  return p;
}
function platformNames(platforms) {
  const short = platforms.map(formatPlatform);
  return platforms.map(
    (p, i) => short.indexOf(short[i]) !== short.lastIndexOf(short[i]) ? formatPlatformFull(p) : short[i]
  );
}

// src/core/reference.ts
var DOCKER_HUB = "docker.io";
var COMPONENT = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
var PATH_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
var DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
var DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`
);
var TAG_RE = /^[\w][\w.-]{0,127}$/;
var ReferenceSyntaxError = class extends UserError {
};
function fail(input, why) {
  throw new ReferenceSyntaxError(`invalid image reference "${input}": ${why}`);
}
function splitDomain(name) {
  const i = name.indexOf("/");
  const first = i === -1 ? "" : name.slice(0, i);
  if (i === -1 || !/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first) {
    return [DOCKER_HUB, name];
  }
  return [first, name.slice(i + 1)];
}
function parseReference(input) {
  const s = input.trim();
  if (s === "") fail(input, "it is empty");
  if (/\s/.test(s)) fail(input, "it contains white space");
  if (/^[a-z0-9]+:\/\//i.test(s)) fail(input, "leave out the scheme (write host/repo:tag)");
  let rest = s;
  let digest;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const problem = digestProblem(digest);
    if (problem) fail(input, problem);
  }
  let tag;
  const lastColon = rest.lastIndexOf(":");
  if (lastColon > rest.lastIndexOf("/")) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_RE.test(tag)) fail(input, `"${tag}" is not a valid tag`);
  }
  if (rest === "") fail(input, "the repository name is missing");
  let [registry, path] = splitDomain(rest);
  if (!DOMAIN_RE.test(registry)) fail(input, `"${registry}" is not a valid registry host`);
  registry = registryOf(registry);
  if (registry === DOCKER_HUB && !path.includes("/")) path = `library/${path}`;
  if (!PATH_RE.test(path)) {
    const why = path.toLowerCase() !== path ? "repository names must be lowercase" : "repository path components are lowercase letters, digits and separators (. _ __ -)";
    fail(input, why);
  }
  if (registry.length + 1 + path.length > 255) fail(input, "the name is longer than 255 characters");
  const ref2 = { registry, repository: path };
  if (tag !== void 0) ref2.tag = tag;
  if (digest !== void 0) ref2.digest = digest;
  return ref2;
}
function registryOf(hostOrUrl) {
  const host = hostOrUrl.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
  return host === "index.docker.io" || host === "registry-1.docker.io" ? DOCKER_HUB : host;
}
var LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;
function isLoopback(host) {
  return LOOPBACK.test(host);
}
function isRegistryHost(value) {
  return DOMAIN_RE.test(value);
}
function repoName(r) {
  return `${r.registry}/${r.repository}`;
}
function sameRepository(a, b) {
  return a.registry === b.registry && a.repository === b.repository;
}
function formatReference(r) {
  let s = repoName(r);
  if (r.tag) s += `:${r.tag}`;
  if (r.digest) s += `@${r.digest}`;
  return s;
}
function apiHost(registry) {
  return registry === DOCKER_HUB ? "registry-1.docker.io" : registry;
}
function uniqueRepos(refs) {
  const map = /* @__PURE__ */ new Map();
  for (const r of refs) map.set(repoName(r), { registry: r.registry, repository: r.repository });
  return [...map.values()];
}

// src/inputs.ts
function githubContext(env = process.env) {
  if (!env.GITHUB_REPOSITORY || !env.GITHUB_SHA) return void 0;
  return {
    serverUrl: env.GITHUB_SERVER_URL || "https://github.com",
    repository: env.GITHUB_REPOSITORY,
    sha: env.GITHUB_SHA
  };
}
var INPUT_NAMES = [
  "tags",
  "sources",
  "digests-dir",
  "source-repository",
  "format",
  "attestations",
  "platforms",
  "on-duplicate",
  "annotations",
  "github-annotations",
  "metadata-json",
  "require-platforms",
  "allow-extra-platforms",
  "append",
  "on-conflict",
  "copy-referrers",
  "preserve-digest",
  "dry-run",
  "max-concurrency",
  "retries",
  "timeout",
  "insecure-registries",
  "username",
  "password",
  "registry-auth",
  "github-token",
  "plan"
];
var RUN_INPUTS = [
  "dry-run",
  "max-concurrency",
  "retries",
  "timeout",
  "insecure-registries",
  "username",
  "password",
  "registry-auth",
  "github-token"
];
var InputError = class extends UserError {
};
function listFormatProblem(name, value) {
  const v = value.trim();
  const json = v.startsWith("[") && v.endsWith("]");
  const yaml = v.split("\n").some((line) => /^\s*-\s+\S/.test(line));
  if (json || yaml) {
    throw new InputError(
      `input ${name}: write one reference per line (or separate them with commas), not a ${json ? "JSON array" : "YAML list"}: use a block scalar (${name}: |) with one reference on each line`
    );
  }
}
function parseList(value) {
  return value.split(/[\n,]/).map((s) => s.trim()).filter((s) => s !== "" && !s.startsWith("#"));
}
function choice(get, name, allowed, dflt) {
  const v = get(name).trim();
  if (v === "") return dflt;
  if (!allowed.includes(v)) {
    throw new InputError(`input ${name}: "${v}" is not one of ${allowed.join(", ")}`);
  }
  return v;
}
function bool(get, name) {
  const v = get(name).trim();
  if (v === "" || /^(false|False|FALSE)$/.test(v)) return false;
  if (/^(true|True|TRUE)$/.test(v)) return true;
  throw new InputError(`input ${name}: "${v}" is not a boolean (use true or false)`);
}
function int(get, name, dflt, min, max) {
  const v = get(name).trim();
  if (v === "") return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new InputError(`input ${name}: "${v}" is not a whole number from ${min} to ${max}`);
  }
  return Number(v);
}
function ref(name, value) {
  try {
    return parseReference(value);
  } catch (e) {
    throw new InputError(`input ${name}: ${e.message}`, { cause: e });
  }
}
function metadataTags(get, env) {
  const fromInput = get("metadata-json").trim();
  const name = fromInput ? "input metadata-json" : "DOCKER_METADATA_OUTPUT_JSON";
  const text = fromInput || env.DOCKER_METADATA_OUTPUT_JSON?.trim();
  if (!text) return [];
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${name}: not valid JSON (${e.message})`, { cause: e });
  }
  const tags = doc.tags;
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === "string")) {
    throw new InputError(
      `${name}: expected docker/metadata-action's json output with a "tags" list`
    );
  }
  return tags;
}
function parseTags(get, env) {
  let values2 = parseList(get("tags"));
  if (values2.length === 0) values2 = metadataTags(get, env);
  else if (get("metadata-json").trim()) {
    throw new InputError("inputs tags and metadata-json: set one of them (both give the tags)");
  }
  if (values2.length === 0)
    throw new InputError(
      "input tags: no tag given (one or more full image references, e.g. ghcr.io/acme/app:1.2.3, or metadata-json)"
    );
  const seen = /* @__PURE__ */ new Set();
  const out = [];
  for (const v of values2) {
    const r = ref("tags", v);
    if (r.digest) {
      throw new InputError(
        `input tags: "${v}" has a digest; tags must be tag references (the index digest is computed and given as the digest output)`
      );
    }
    r.tag ??= "latest";
    const key = formatReference(r);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out;
}
function bareDigest(name, value, repo, lookedUpIn, input = value) {
  const problem = digestProblem(value);
  if (problem) throw new InputError(`input ${name}: "${value}" is not a valid digest: ${problem}`);
  const ref2 = { registry: repo.registry, repository: repo.repository, digest: value };
  return { input, ref: ref2, lookedUpIn };
}
function digestsDir(dir, bareRepo, lookedUpIn, others) {
  let entries;
  try {
    if (!(0, import_node_fs.statSync)(dir).isDirectory()) throw new Error("not a directory");
    entries = (0, import_node_fs.readdirSync)(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  } catch (e) {
    throw new InputError(`input digests-dir: cannot read "${dir}": ${e.message}`, {
      cause: e
    });
  }
  entries = entries.filter((d) => !d.name.startsWith("."));
  const folders = entries.filter((d) => d.isDirectory()).map((d) => d.name);
  if (folders.length) {
    throw new InputError(
      `input digests-dir: "${dir}" holds folders (${folders.slice(0, 3).join(", ")}${folders.length > 3 ? ", ..." : ""}), not digest files: actions/download-artifact puts each artifact in a folder of its own unless merge-multiple: true is set`
    );
  }
  if (entries.length === 0 && !others) {
    throw new InputError(
      `input digests-dir: the folder "${dir}" is empty: the digest artifacts have not arrived (check that the build jobs uploaded them and that actions/download-artifact ran with the right pattern and merge-multiple: true)`
    );
  }
  return entries.map(({ name }) => {
    const digest = name.startsWith("sha256:") ? name : `sha256:${name}`;
    if (digestProblem(digest)) {
      throw new InputError(
        `input digests-dir: file "${(0, import_node_path.join)(dir, name)}" is not named by a sha256 digest (expected 64 lowercase hex characters)`
      );
    }
    return bareDigest("digests-dir", digest, bareRepo, lookedUpIn, digest);
  });
}
function parseSources(get, tags) {
  const repoInput = get("source-repository").trim();
  let bareRepo = tags[0];
  if (repoInput) {
    bareRepo = ref("source-repository", repoInput);
    if (bareRepo.tag || bareRepo.digest) {
      throw new InputError(
        `input source-repository: "${repoInput}" must be a repository without tag or digest`
      );
    }
  }
  const lookedUpIn = repoInput ? "source-repository" : "first tag";
  listFormatProblem("sources", get("sources"));
  const out = [];
  for (const v of parseList(get("sources"))) {
    if (/^[a-f0-9]{64}$/.test(v)) {
      throw new InputError(
        `input sources: "${v}" is a digest without its algorithm: did you mean sha256:${v}?`
      );
    }
    if (/^sha\d*:/i.test(v) && !/[/@]/.test(v)) {
      out.push(bareDigest("sources", v, bareRepo, lookedUpIn));
      continue;
    }
    const r = ref("sources", v);
    if (r.digest)
      delete r.tag;
    else r.tag ??= "latest";
    out.push({ input: v, ref: r });
  }
  const dir = get("digests-dir").trim();
  if (dir) out.push(...digestsDir(dir, bareRepo, lookedUpIn, out.length > 0));
  if (out.length === 0)
    throw new InputError("input sources: no sources given (set sources and/or digests-dir)");
  return out;
}
function parseAnnotations(value) {
  const out = { index: {}, descriptor: {}, byPlatform: [], ignored: [] };
  for (const line of value.split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("#")) continue;
    const i = line.indexOf("=");
    if (i <= 0) throw new InputError(`input annotations: "${line}" is not key=value`);
    let key = line.slice(0, i).trim();
    const val = line.slice(i + 1).trim();
    const prefix = /^([a-z-]+(?:\[[^\]]*\])?):(.+)$/.exec(key);
    let level = "index";
    if (prefix && /^(index|manifest|manifest-descriptor|index-descriptor)(\[|$)/.test(prefix[1])) {
      level = prefix[1];
      key = prefix[2];
    }
    const platforms = /^manifest-descriptor\[(.*)\]$/.exec(level)?.[1];
    if (level === "index") out.index[key] = val;
    else if (level === "manifest-descriptor") out.descriptor[key] = val;
    else if (platforms !== void 0)
      out.byPlatform.push({ platforms: annotationPlatforms(platforms, line), key, value: val });
    else out.ignored.push(line);
  }
  return out;
}
function annotationPlatforms(list, line) {
  const specs = list.split(",").map((s) => s.trim());
  return specs.map((spec) => {
    const p = spec ? parsePlatform(spec) : "an empty platform";
    if (typeof p === "string")
      throw new InputError(`input annotations: "${line}" names the platform "${spec}": ${p}`);
    return p;
  });
}
function parseCredentials(get, tags, onSecret) {
  const creds = /* @__PURE__ */ new Map();
  for (const line of get("registry-auth").split("\n").map((l) => l.trim())) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([^=\s]+)=([^:]+):(.+)$/.exec(line);
    if (!m) {
      throw new InputError(
        "input registry-auth: each line must be registry=username:password (a line does not match; its content is not shown because it may hold a secret)"
      );
    }
    const [, registry, username2, password2] = m;
    onSecret(password2);
    creds.set(registryOf(registry), { username: username2, password: password2 });
  }
  const username = get("username").trim();
  const password = get("password");
  if (password) onSecret(password);
  if (username || password) {
    if (!username || !password)
      throw new InputError("inputs username and password: set both or neither");
    for (const t of tags) creds.set(t.registry, { username, password });
  }
  return creds;
}
function secret(value, onSecret) {
  const v = value.trim();
  if (v) onSecret(v);
  return v;
}
function platformList(get, name) {
  const values2 = parseList(get(name));
  if (values2.length === 0) return void 0;
  return values2.map((v) => {
    const p = parsePlatform(v);
    if (typeof p === "string") throw new InputError(`input ${name}: ${p}`);
    return p;
  });
}
function parseInputs(get, onSecret = () => {
}, env = process.env, github) {
  const image = parseImageInputs(get, env, github);
  return { ...image, ...parseRunInputs(get, image.tags, onSecret) };
}
function parseRunInputs(get, tags, onSecret) {
  return {
    dryRun: bool(get, "dry-run"),
    maxConcurrency: int(get, "max-concurrency", 32, 1, 128),
    retries: int(get, "retries", 10, 0, 20),
    timeoutSeconds: int(get, "timeout", 900, 1, 21600),
    insecureRegistries: parseList(get("insecure-registries")).map((h) => {
      if (!isRegistryHost(h)) {
        throw new InputError(
          `input insecure-registries: "${h}" is not a registry host (write host or host:port, without scheme or path)`
        );
      }
      return h.toLowerCase();
    }),
    credentials: parseCredentials(get, tags, onSecret),
    githubToken: secret(get("github-token"), onSecret)
  };
}
function parseImageInputs(get, env = process.env, github) {
  const tags = parseTags(get, env);
  const sources = parseSources(get, tags);
  const preserve = bool(get, "preserve-digest");
  const annotations = parseAnnotations(
    get("annotations") || (preserve ? "" : env.DOCKER_METADATA_OUTPUT_ANNOTATIONS ?? "")
  );
  if (bool(get, "github-annotations")) {
    if (!github) {
      throw new InputError(
        "input github-annotations: the workflow context (GITHUB_REPOSITORY, GITHUB_SHA) is not available"
      );
    }
    annotations.index["org.opencontainers.image.source"] ??= `${github.serverUrl}/${github.repository}`;
    annotations.index["org.opencontainers.image.revision"] ??= github.sha;
  }
  return {
    tags,
    sources,
    format: choice(get, "format", ["auto", "oci", "docker"], "auto"),
    attestations: choice(
      get,
      "attestations",
      ["keep", "strip", "strip-provenance", "referrers", "referrers-strip-provenance"],
      "keep"
    ),
    platforms: platformList(get, "platforms"),
    onDuplicate: choice(get, "on-duplicate", ["error", "first", "last"], "error"),
    annotations: annotations.index,
    descriptorAnnotations: annotations.descriptor,
    platformDescriptorAnnotations: annotations.byPlatform,
    ignoredAnnotations: annotations.ignored,
    requirePlatforms: platformList(get, "require-platforms"),
    allowExtraPlatforms: bool(get, "allow-extra-platforms"),
    append: bool(get, "append"),
    onConflict: choice(get, "on-conflict", ["fail", "skip", "warn"], "fail"),
    copyReferrers: bool(get, "copy-referrers"),
    preserveDigest: preserve
  };
}

// src/core/children.ts
function unwrapIndex(index, where) {
  if (looksLikeBuildCache(index)) {
    throw new ManifestError(
      `${where}: this is a build cache, not an image (its entries are layer blobs, as written by --cache-to type=registry); pass the image's digest instead`
    );
  }
  return index.manifests.map((d) => {
    if (!isManifestDescriptor(d)) {
      throw new ManifestError(
        `${where}: entry ${d.digest} has media type ${d.mediaType}, which is not a manifest`
      );
    }
    const unknown = isUnknownPlatform(d.platform);
    const role = isAttestationDescriptor(d) ? "attestation" : isIndexType(d.mediaType) ? "nested-index" : unknown && referenceTypeOf(d) ? "companion" : unknown ? "unplatformed" : "image";
    return { role, descriptor: d };
  });
}
function referenceTypeOf(d) {
  const type = d.annotations?.[ATTESTATION_TYPE_KEY];
  if (typeof type !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(type)) return void 0;
  return type !== ATTESTATION_MANIFEST ? type : void 0;
}
function mediaTypeName(t) {
  const part = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
  return typeof t === "string" && new RegExp(`^${part}/${part}$`).test(t) ? t : void 0;
}
function entryName(c) {
  return c.kind === "image" ? "image" : c.referenceType ? `${c.referenceType} manifest` : "attestation";
}
function attestationSubject(d) {
  const subject = d.annotations?.[ATTESTATION_DIGEST_KEY];
  return subject !== void 0 && isDigest(subject) ? subject : void 0;
}
function asReferrers(mode) {
  return mode === "referrers" || mode === "referrers-strip-provenance";
}
function stripsProvenance(mode) {
  return mode === "strip-provenance" || mode === "referrers-strip-provenance";
}
function selectChildren(all, opts) {
  const decisions = [];
  const images = all.filter((c) => c.kind === "image");
  const fromSources = new Set(
    all.filter((c) => c.kind === "image" && !c.existing).map((c) => c.descriptor.digest)
  );
  const attestations = all.filter(
    (c) => c.kind === "attestation" && !(c.existing && c.subject && fromSources.has(c.subject))
  );
  const filtered = images.filter((c) => {
    const p = c.descriptor.platform;
    const keep = !opts.platforms || opts.platforms.some((f) => platformMatches(f, p));
    if (!keep)
      decisions.push(
        `skip ${formatPlatformFull(p)} ${c.descriptor.digest} from ${c.sourceInput}: not in platforms`
      );
    return keep;
  });
  const byDigest = /* @__PURE__ */ new Map();
  for (const c of filtered) {
    const seen = byDigest.get(c.descriptor.digest);
    if (!seen || seen.existing && !c.existing) byDigest.set(c.descriptor.digest, c);
  }
  const newKeys = new Set(
    [...byDigest.values()].filter((c) => !c.existing).map((c) => platformKey(c.descriptor.platform))
  );
  const unique = [...byDigest.values()].filter((c) => {
    const key = platformKey(c.descriptor.platform);
    if (!c.existing || !newKeys.has(key)) return true;
    decisions.push(
      `replace ${key} ${c.descriptor.digest} (held by ${c.sourceInput}): a source provides ${key}`
    );
    return false;
  });
  const byPlatform = /* @__PURE__ */ new Map();
  for (const c of unique) {
    const key = platformKey(c.descriptor.platform);
    byPlatform.set(key, [...byPlatform.get(key) ?? [], c]);
  }
  const kept = /* @__PURE__ */ new Set();
  for (const [key, group] of byPlatform) {
    if (group.length === 1) {
      kept.add(group[0]);
      continue;
    }
    if (opts.onDuplicate === "error") {
      throw new DuplicatePlatformError(
        `platform ${key} is provided by more than one source: ${group.map(describeSource).join(", ")}; remove one, narrow with platforms, or set on-duplicate to first or last`
      );
    }
    const winner = opts.onDuplicate === "first" ? group[0] : group[group.length - 1];
    kept.add(winner);
    for (const c of group) {
      if (c !== winner)
        decisions.push(
          `drop ${key} ${c.descriptor.digest} from ${c.sourceInput}: duplicate platform (on-duplicate: ${opts.onDuplicate})`
        );
    }
  }
  const out = [];
  const placed = /* @__PURE__ */ new Set();
  for (const img of unique) {
    if (!kept.has(img)) continue;
    out.push(img);
    for (const a of attestations) {
      if (a.subject !== img.descriptor.digest || placed.has(a.descriptor.digest)) continue;
      if (opts.attestations === "strip") {
        decisions.push(`strip ${entryName(a)} ${a.descriptor.digest} of ${img.descriptor.digest}`);
        placed.add(a.descriptor.digest);
        continue;
      }
      placed.add(a.descriptor.digest);
      out.push(a);
    }
  }
  for (const a of attestations) {
    if (!placed.has(a.descriptor.digest)) {
      placed.add(a.descriptor.digest);
      decisions.push(
        `drop ${entryName(a)} ${a.descriptor.digest}: ${a.subject ? `its image ${a.subject} is not in the index` : `it names no image it belongs to, and is not an image itself (from ${a.sourceInput})`}`
      );
    }
  }
  return { children: out, decisions };
}
var DuplicatePlatformError = class extends UserError {
};
function describeSource(c) {
  return c.sourceInput.includes(c.descriptor.digest) ? c.sourceInput : `${c.sourceInput} (${c.descriptor.digest})`;
}
function checkRequiredPlatforms(children, required, allowExtra, sourceInputs) {
  const have = children.filter((c) => c.kind === "image").map((c) => c.descriptor.platform);
  const missing = required.filter((r) => !have.some((p) => platformMatches(r, p)));
  const extra = allowExtra ? [] : have.filter((p) => !required.some((r) => platformMatches(r, p)));
  if (missing.length === 0 && extra.length === 0) return void 0;
  const parts = [];
  if (missing.length) parts.push(`missing ${missing.map(formatPlatformFull).join(", ")}`);
  if (extra.length) {
    parts.push(
      `not listed: ${extra.map(formatPlatformFull).join(", ")} (set allow-extra-platforms: true to permit extras)`
    );
  }
  return `input require-platforms: ${parts.join("; ")}. The merge would hold ${have.map(formatPlatformFull).join(", ") || "no image"}, from sources: ${sourceInputs.join(", ")}`;
}
function describeEntry(c) {
  const p = c.descriptor.platform;
  const what = c.kind === "image" && p ? formatPlatformFull(p) : `${entryName(c)} for ${c.subject ?? "?"}`;
  return `${c.sourceInput}: ${what} ${c.descriptor.digest} (${c.descriptor.mediaType})`;
}

// src/core/index-builder.ts
function chooseIndexType(children, opts) {
  const allDocker = children.every((d) => d.mediaType === DOCKER_MANIFEST);
  const hasAnnotations = !!opts.annotations && Object.keys(opts.annotations).length > 0 || children.some((d) => d.annotations && Object.keys(d.annotations).length > 0);
  if (opts.format === "docker") {
    const attestation = children.find((d) => d.annotations?.[ATTESTATION_TYPE_KEY]);
    if (attestation) {
      throw new FormatError(
        `input format: "docker", but ${attestation.digest} is an attestation (or other unknown/unknown entry), which only an OCI index can carry: set attestations: strip, or use format: auto or oci`
      );
    }
    const bad = children.find((d) => d.mediaType !== DOCKER_MANIFEST);
    if (bad) {
      throw new FormatError(
        `input format: "docker", but ${bad.digest} is ${bad.mediaType}; a Docker manifest list can only hold Docker v2 manifests (use format: auto or oci)`
      );
    }
    if (hasAnnotations)
      throw new FormatError(
        'input format: "docker", but annotations need an OCI index (use format: auto or oci)'
      );
    return DOCKER_LIST;
  }
  if (opts.format === "oci") return OCI_INDEX;
  return allDocker && !hasAnnotations ? DOCKER_LIST : OCI_INDEX;
}
function orderedPlatform(p) {
  const out = { architecture: p.architecture, os: p.os };
  if (p["os.version"]) out["os.version"] = p["os.version"];
  if (p["os.features"]?.length) out["os.features"] = [...p["os.features"]];
  if (p.variant) out.variant = p.variant;
  if (p.features?.length) out.features = [...p.features];
  return out;
}
function orderedDescriptor(d, docker) {
  const out = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (!docker && d.artifactType) out.artifactType = d.artifactType;
  if (d.platform) out.platform = orderedPlatform(d.platform);
  if (!docker && d.annotations && Object.keys(d.annotations).length)
    out.annotations = sortKeys(d.annotations);
  return out;
}
function sortKeys(o) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}
function buildIndex(children, opts) {
  if (children.length === 0) throw new FormatError("no images left to put in the index");
  const mediaType = chooseIndexType(children, opts);
  const docker = mediaType === DOCKER_LIST;
  const doc = {
    schemaVersion: 2,
    mediaType,
    manifests: children.map((d) => orderedDescriptor(d, docker))
  };
  if (!docker && opts.annotations && Object.keys(opts.annotations).length)
    doc.annotations = sortKeys(opts.annotations);
  const json = JSON.stringify(doc, null, 2);
  const bytes = Buffer.from(json, "utf8");
  return { bytes, mediaType, digest: sha256(bytes), json };
}
var FormatError = class extends UserError {
};

// src/core/plan.ts
var MergeInputError = class extends UserError {
};
function selectEntries(all, opts, sourceInputs) {
  const { children, decisions } = selectChildren(all, opts);
  if (opts.platforms && !children.some((c) => c.kind === "image")) {
    const found = all.filter((c) => c.kind === "image").map((c) => formatPlatformFull(c.descriptor.platform));
    throw new MergeInputError(
      `input platforms: ${opts.platforms.map(formatPlatformFull).join(", ")} matches none of the images found (${found.join(", ")})`
    );
  }
  if (opts.requirePlatforms) {
    const problem = checkRequiredPlatforms(
      children,
      opts.requirePlatforms,
      !!opts.allowExtraPlatforms,
      sourceInputs
    );
    if (problem) throw new MergeInputError(problem);
  }
  return { children, decisions };
}
function describedAsFetched(children, fetched, decisions) {
  return children.map((c) => {
    const raw = c.rewritten ? void 0 : fetched.get(c.descriptor.digest);
    if (!raw) return c;
    const { size, mediaType } = c.descriptor;
    const known = isIndexType(raw.mediaType) || isImageManifestType(raw.mediaType);
    const type = known ? raw.mediaType : mediaType;
    if (size === raw.bytes.length && mediaType === type) return c;
    decisions.push(
      `entry ${c.descriptor.digest} of ${c.sourceInput}: its index says ${mediaType}, ${size} bytes; the manifest is ${type}, ${raw.bytes.length} bytes, as the index now says`
    );
    return { ...c, descriptor: { ...c.descriptor, size: raw.bytes.length, mediaType: type } };
  });
}
function planIndex(entries, opts) {
  const children = withDescriptorAnnotations(
    entries,
    opts.descriptorAnnotations ?? {},
    opts.platformDescriptorAnnotations ?? []
  );
  const index = buildIndex(
    children.map((c) => c.descriptor),
    { format: opts.format, annotations: opts.annotations }
  );
  return { children, index };
}
function withDescriptorAnnotations(children, extra, byPlatform) {
  if (!Object.keys(extra).length && !byPlatform.length) return children;
  return children.map((c) => {
    if (c.kind !== "image") return c;
    const p = c.descriptor.platform;
    const own = byPlatform.filter((a) => a.platforms.some((f) => platformMatches(f, p)));
    const annotations = {
      ...c.descriptor.annotations,
      ...extra,
      ...Object.fromEntries(own.map((a) => [a.key, a.value]))
    };
    if (!Object.keys(annotations).length) return c;
    return { ...c, descriptor: { ...c.descriptor, annotations } };
  });
}
function planTags(tags, current, indexDigest, dryRun) {
  return tags.map((t, i) => {
    const previous = current[i];
    const outcome = previous === indexDigest ? "unchanged" : dryRun ? "dry-run" : "pushed";
    return previous ? { ref: formatReference(t), outcome, previous } : { ref: formatReference(t), outcome };
  });
}
function reposToPush(targets, tags, results) {
  return targets.filter(
    (repo) => tags.some((t, i) => repoName(t) === repoName(repo) && results[i].outcome === "pushed")
  );
}
function indexRefusalAdvice(index, children) {
  const attested = children.some((c) => c.kind === "attestation");
  const images = children.filter((c) => c.kind === "image");
  const dockerImages = images.every((c) => c.descriptor.mediaType === DOCKER_MANIFEST);
  const advice = [];
  if (attested)
    advice.push(
      "if it refuses attestation entries (platform unknown/unknown), set attestations: strip"
    );
  if (index.mediaType === OCI_INDEX) {
    advice.push(
      dockerImages ? `if it does not take OCI indexes, set format: docker${attested ? " with attestations: strip" : ""}` : "if it does not take OCI indexes, build the images with Docker media types (BuildKit: oci-mediatypes=false) and set format: docker"
    );
  }
  return advice.join("; ");
}
function unmatchedAnnotations(children, byPlatform) {
  const images = children.filter((c) => c.kind === "image").map((c) => c.descriptor.platform);
  return byPlatform.filter((a) => !images.some((p) => a.platforms.some((f) => platformMatches(f, p)))).map(
    (a) => `annotation manifest-descriptor[${a.platforms.map(formatPlatformFull).join(",")}]:${a.key} matches no image in the index: not applied`
  );
}

// src/registry/errors.ts
var RegistryError = class extends Error {
  status;
  code;
  detail;
  registry;
  repository;
  request;
  constructor(message, details = {}) {
    super(message, details.cause === void 0 ? void 0 : { cause: details.cause });
    this.name = new.target.name;
    this.status = details.status;
    this.code = details.code;
    this.detail = details.detail;
    this.registry = details.registry;
    this.repository = details.repository;
    this.request = details.request;
  }
};
function detailsOf(e) {
  const { status, code, detail, registry, repository, request } = e;
  return { status, code, detail, registry, repository, request, cause: e };
}
var RetriesExhaustedError = class extends RegistryError {
  constructor(message, details, attempts, budgetExhausted) {
    super(message, details);
    this.attempts = attempts;
    this.budgetExhausted = budgetExhausted;
  }
  attempts;
  budgetExhausted;
};
function statusOf(e) {
  return e instanceof RegistryError ? e.status : void 0;
}
function isNotFound(e) {
  return statusOf(e) === 404;
}
function isAbsent(e) {
  const s = statusOf(e);
  return s === 404 || s === 403;
}
function isDenied(e) {
  return statusOf(e) === 403;
}
function isTagConflict(e) {
  const s = statusOf(e);
  return s === 403 || s === 409 || s === 412 && !isPolicyViolation(e) || s === 400 && e instanceof RegistryError && e.code === "TAG_INVALID" || isForbiddenAsInvalid(e);
}
function isForbiddenAsInvalid(e) {
  return e instanceof RegistryError && e.status === 400 && e.code === "MANIFEST_INVALID" && /^HTTP 403\b|\b403 Forbidden\b/i.test(e.detail ?? "");
}
function isPolicyViolation(e) {
  return statusOf(e) === 412 && e instanceof RegistryError && e.code === "PROJECTPOLICYVIOLATION";
}
function isRepositoryMissing(e) {
  return statusOf(e) === 404 && e instanceof RegistryError && e.code === "NAME_UNKNOWN";
}
function isRefused(e) {
  const s = statusOf(e);
  return s !== void 0 && s >= 400 && s < 500;
}
function isUnsupported(e) {
  const s = statusOf(e);
  return s === 404 || s === 400 || s === 405;
}
function isRetryableStatus(status) {
  return status === 408 || status === 429 || status >= 500 && status <= 504 && status !== 501;
}
function describeErrorBody(body) {
  try {
    const doc = JSON.parse(body);
    const e = Array.isArray(doc?.errors) ? doc.errors[0] : void 0;
    if (e && typeof e === "object") {
      const code = typeof e.code === "string" ? e.code.slice(0, 100) : void 0;
      const message = typeof e.message === "string" ? e.message.slice(0, 300) : void 0;
      const detail = detailText(e.detail);
      const text2 = [code, message].filter(Boolean).join(": ");
      const shown = detail && !text2.includes(detail) ? ` (${detail})` : "";
      return { code, text: text2 + shown, detail };
    }
  } catch {
  }
  const text = body.trim().slice(0, 300);
  return { text };
}
function detailText(detail) {
  if (detail === void 0 || detail === null) return void 0;
  if (typeof detail === "string") return detail.slice(0, 300) || void 0;
  const { description, message } = detail;
  if (typeof description === "string") return description.slice(0, 300);
  if (typeof message === "string") return message.slice(0, 300);
  const json = JSON.stringify(detail);
  return json && json !== "{}" && json !== "[]" ? json.slice(0, 300) : void 0;
}
function isContentRefused(e) {
  if (!(e instanceof RegistryError) || isForbiddenAsInvalid(e)) return false;
  const other = ["TAG_INVALID", "MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "NAME_UNKNOWN", "DENIED"];
  if (e.code && other.includes(e.code)) return false;
  return e.status === 400 || e.status === 404 || e.status === 415 || e.status === 501;
}
function adviceFor(e, method) {
  const repo = e.repository ? `repository ${e.repository}` : "the repository";
  const where = e.registry ? ` on ${e.registry}` : "";
  if (isPolicyViolation(e))
    return `a project policy of this Harbor registry (vulnerability severity or unsigned artifacts) blocks pulling it; fix or sign the image, or ask a project admin to change the policy`;
  if (isRepositoryMissing(e) && method !== "GET" && method !== "HEAD")
    return `${repo} does not exist${where}, and this registry does not create repositories on push (Amazon ECR, for one): create it first`;
  if (isForbiddenAsInvalid(e))
    return `the registry refused the write (HTTP 403 inside a 400): the credentials lack overwrite (delete) permission, as Artifactory reports it`;
  return void 0;
}

// src/util/limiter.ts
var Limiter = class {
  constructor(max) {
    this.max = max;
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`concurrency must be a positive integer, got ${max}`);
  }
  max;
  active = 0;
  waiting = [];
  async run(task) {
    if (this.active >= this.max) await new Promise((resolve2) => this.waiting.push(resolve2));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
};
async function allSettledOrThrow(tasks) {
  const results = await Promise.allSettled(tasks);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => r.value);
}
var OnceMap = class {
  map = /* @__PURE__ */ new Map();
  /** Records a value already known under another key (a manifest fetched by tag is also its digest's). */
  seed(key, value) {
    if (!this.map.has(key)) this.map.set(key, Promise.resolve(value));
  }
  /** What is known or under way for `key`, without starting anything. */
  peek(key) {
    return this.map.get(key);
  }
  get(key, make) {
    let p = this.map.get(key);
    if (!p) {
      p = make();
      this.map.set(key, p);
      p.catch(() => this.map.delete(key));
    }
    return p;
  }
};

// src/copy.ts
var TargetCopier = class {
  constructor(client, target, known = () => void 0) {
    this.client = client;
    this.target = target;
    this.known = known;
  }
  client;
  target;
  known;
  stats = { manifests: 0, mounted: 0, streamed: 0, present: 0, uploaded: 0 };
  blobs = new OnceMap();
  manifests = new OnceMap();
  /**
   * Puts `raw` (an image manifest from `source`, or made by this run with `newBlobs`; or an
   * index, which holds no blobs) into the target. Its manifest is PUT only once `ready`
   * settles: the copies of the manifest its `subject` names and of an index's entries, which
   * registries require to be there first.
   */
  copy(raw, source, what, newBlobs = [], ready) {
    return this.manifests.get(raw.digest, async () => {
      const parsed = parseManifest(raw, `${what} (${raw.digest})`);
      const blobs = parsed.kind === "image" ? blobsOf(parsed.manifest) : [];
      await allSettledOrThrow(
        blobs.map(
          (b) => (
            // A blob shared by several manifests (a base layer) is handled once per target.
            this.blobs.get(b.digest, async () => {
              const made = newBlobs.find((n) => n.digest === b.digest);
              if (made) {
                await this.client.uploadBlob(this.target, made.digest, made.bytes);
                this.stats.uploaded++;
                return;
              }
              this.stats[await this.ensureBlob(source, b.digest, b.size)]++;
            })
          )
        )
      );
      await ready;
      await this.client.putManifest(this.target, raw.digest, raw);
      this.stats.manifests++;
    });
  }
  async ensureBlob(source, digest, size) {
    const { client, target } = this;
    if (source.registry === target.registry) {
      const r = await client.mountBlob(target, digest, source);
      if (r === "mounted") return "mounted";
      await client.copyBlob(source, target, digest, size, r.location);
      return "streamed";
    }
    const known = this.known(digest);
    if (known)
      return await client.uploadBlob(target, digest, await known) ? "streamed" : "present";
    if (await client.blobExists(target, digest)) return "present";
    await client.copyBlob(source, target, digest, size);
    return "streamed";
  }
  describe() {
    const s = this.stats;
    return `${repoName(this.target)}: ${s.manifests} manifest(s) pushed, ${s.mounted} blob(s) mounted, ${s.streamed} streamed, ${s.present} already present${s.uploaded ? `, ${s.uploaded} uploaded` : ""}`;
  }
};
async function ensureChildren(copier, store, children) {
  const copies = /* @__PURE__ */ new Map();
  let start = () => void 0;
  const registered = new Promise((resolve2) => start = resolve2);
  for (const c of children) {
    if (c.rewritten === void 0 && sameRepository(c.source, copier.target)) continue;
    const digest = c.descriptor.digest;
    if (copies.has(digest)) continue;
    copies.set(
      digest,
      (async () => {
        await registered;
        const raw = c.rewritten ?? await store.get(c.source, digest);
        const { subject, entries } = dependencies(raw, c.sourceInput);
        if (entries.some((d) => !copies.has(d)))
          throw new Error(`${c.sourceInput}: ${digest} is an index, not an image manifest`);
        const waits = [subject, ...entries].filter((d) => d !== void 0 && d !== digest).map((d) => copies.get(d)).filter((p) => p !== void 0);
        const ready = waits.length ? Promise.all(waits).then(() => void 0) : void 0;
        ready?.catch(() => void 0);
        try {
          await copier.copy(raw, c.source, c.sourceInput, c.newBlobs, ready);
        } catch (e) {
          const own = e instanceof RegistryError && e.request === `PUT manifest ${digest}`;
          if (!own || !isContentRefused(e)) throw e;
          if (isIndexType(c.descriptor.mediaType)) throw indexAsIsRefused(e, c);
          throw c.kind === "attestation" ? attestationRefused(e, c) : e;
        }
      })()
    );
  }
  start();
  await allSettledOrThrow([...copies.values()]);
}
function dependencies(raw, what) {
  const parsed = parseManifest(raw, `${what} (${raw.digest})`);
  if (parsed.kind === "image") return { subject: parsed.manifest.subject?.digest, entries: [] };
  const { subject, manifests } = parsed.index;
  return { subject: subject?.digest, entries: manifests.map((d) => d.digest) };
}
function indexAsIsRefused(e, c) {
  return new RegistryError(
    `registry ${e.registry ?? "?"} refused the index ${c.descriptor.digest} (${c.descriptor.mediaType}) as it is: ${e.message}. preserve-digest pushes the index unchanged: promote without preserve-digest to let the index change (format, attestations)`,
    detailsOf(e)
  );
}
function attestationRefused(e, c) {
  const what = entryName(c);
  return new RegistryError(
    `registry ${e.registry ?? "?"} refused the ${what} ${c.descriptor.digest}${c.subject ? ` of image ${c.subject}` : ""}: ${e.message}. If it does not take attestations, set attestations: strip`,
    detailsOf(e)
  );
}

// src/registry/client.ts
var import_node_stream3 = require("node:stream");

// src/registry/request.ts
var import_node_events = require("node:events");

// src/registry/challenge.ts
function parseChallenges(header2) {
  if (!header2) return [];
  const out = [];
  const re = /\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*,?/g;
  let current;
  let m;
  while ((m = re.exec(header2)) !== null && m[0] !== "") {
    const [, name, quoted, bare] = m;
    if (quoted === void 0 && bare === void 0) {
      current = { scheme: name.toLowerCase(), params: {} };
      out.push(current);
    } else if (current) {
      current.params[name.toLowerCase()] = quoted !== void 0 ? quoted.replace(/\\(.)/g, "$1") : bare;
    }
  }
  return out;
}

// src/registry/http1.ts
var import_node_net2 = require("node:net");

// src/registry/builtins.ts
var http = () => process.getBuiltinModule("node:http");
var http2 = () => process.getBuiltinModule("node:http2");
var tls = () => process.getBuiltinModule("node:tls");

// src/registry/dial.ts
var import_node_net = require("node:net");

// src/registry/timeouts.ts
var TimeoutError = class extends Error {
  constructor(name, message, code) {
    super(message);
    this.name = name;
    this.code = code;
  }
  name;
  code;
};
function connectTimeout() {
  return new TimeoutError("ConnectTimeoutError", "Connect Timeout Error", "UND_ERR_CONNECT_TIMEOUT");
}
function headersTimeout() {
  return new TimeoutError("HeadersTimeoutError", "Headers Timeout Error", "UND_ERR_HEADERS_TIMEOUT");
}
function bodyTimeout() {
  return new TimeoutError("BodyTimeoutError", "Body Timeout Error", "UND_ERR_BODY_TIMEOUT");
}
function reasonOf(signal) {
  const reason = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}

// src/registry/dial.ts
function dialTls(d) {
  const socket = tls().connect({
    host: d.host,
    port: d.port,
    // SNI carries host names only; Node warns when given an address.
    servername: (0, import_node_net.isIP)(d.host) ? void 0 : d.host,
    ALPNProtocols: d.alpn,
    rejectUnauthorized: !d.insecure,
    session: d.session
  });
  return withTimeout(socket, "secureConnect", d.timeoutMs);
}
function dialTcp(host, port, timeoutMs) {
  return withTimeout((0, import_node_net.connect)({ host, port }), "connect", timeoutMs);
}
function withTimeout(socket, event, ms) {
  const timer = setTimeout(() => socket.destroy(connectTimeout()), ms);
  const clear = () => clearTimeout(timer);
  socket.once(event, clear);
  socket.once("close", clear);
  return socket;
}

// src/registry/response-body.ts
var import_node_stream = require("node:stream");
var ResponseBody = class extends import_node_stream.Readable {
  constructor(source) {
    super();
    this.source = source;
    const { stream } = source;
    this.arm();
    stream.on("data", (chunk) => {
      this.arm();
      if (!this.push(chunk)) {
        stream.pause();
        this.disarm();
      }
    });
    stream.once("end", () => {
      this.disarm();
      if (source.complete()) this.push(null);
      else this.destroy(cutShort(source.cutCode));
    });
    stream.on("error", (e) => this.destroy(source.complete() ? e : cutShort(source.cutCode)));
    stream.once("close", () => {
      if (!this.destroyed && !stream.readableEnded) this.destroy(cutShort(source.cutCode));
    });
  }
  source;
  gap;
  _read() {
    if (!this.source.stream.isPaused()) return;
    this.arm();
    this.source.stream.resume();
  }
  _destroy(e, callback) {
    this.disarm();
    this.source.cancel();
    callback(e);
  }
  /** (Re)starts the gap timer: a cleared timer cannot be refreshed. */
  arm() {
    if (this.gap) this.gap.refresh();
    else
      this.gap = setTimeout(() => {
        this.source.onStall?.();
        this.destroy(bodyTimeout());
      }, this.source.gapMs);
  }
  disarm() {
    clearTimeout(this.gap);
    this.gap = void 0;
  }
};
function cutShort(code) {
  return Object.assign(new Error("the connection closed before the end of the answer"), { code });
}

// src/registry/http1.ts
var IDLE_MS = 3e4;
var Http1Pool = class {
  constructor(opts) {
    this.opts = opts;
    this.agent = new (http()).Agent({
      keepAlive: true,
      keepAliveMsecs: 6e4,
      maxSockets: opts.maxSockets,
      timeout: IDLE_MS
    });
    this.agent.createConnection = (options) => this.connect(String(options.host), Number(options.port), !!options.https);
  }
  opts;
  agent;
  /** TLS sessions per host:port, for resumption on the next connection. */
  tlsSessions = /* @__PURE__ */ new Map();
  request(r) {
    const { method, url, body, timeoutMs, bodyGapMs, signal } = r;
    const https = url.protocol === "https:";
    return new Promise((resolve2, reject) => {
      if (signal?.aborted) {
        reject(reasonOf(signal));
        return;
      }
      let req;
      try {
        req = http().request({
          agent: this.agent,
          hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
          port: Number(url.port || (https ? 443 : 80)),
          path: url.pathname + url.search,
          method,
          // Host as the URL has it (the default port left out), not as the agent would make it.
          headers: { ...r.headers, host: url.host },
          setHost: false,
          maxHeaderSize: this.opts.maxHeaderBytes,
          // Read by createConnection: the agent is an http.Agent for both.
          ...{ https }
        });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
        return;
      }
      let answered2;
      let response;
      const done = () => signal?.removeEventListener("abort", onAbort);
      const fail2 = (e) => {
        if (!answered2) {
          done();
          reject(e);
        } else if (!response?.complete) answered2.destroy(e);
        req.destroy(e);
      };
      const onAbort = () => fail2(reasonOf(signal));
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e) => fail2(e.message === "socket hang up" ? cutBeforeAnswer() : e));
      req.setTimeout(timeoutMs, () => {
        if (!answered2) fail2(headersTimeout());
      });
      let waiting;
      req.once("finish", () => {
        if (!answered2) waiting = setTimeout(() => fail2(headersTimeout()), timeoutMs);
      });
      req.once("close", () => {
        clearTimeout(waiting);
        if (!answered2) fail2(cutBeforeAnswer());
      });
      req.once("response", (res) => {
        response = res;
        clearTimeout(waiting);
        req.setTimeout(0);
        answered2 = new ResponseBody({
          stream: res,
          complete: () => res.complete,
          // Node hands a connection back only once its answer was read to the end: one that
          // nobody reads to the end (even with every byte received) must close, or it is lost.
          cancel: () => {
            if (!res.readableEnded) res.destroy();
          },
          gapMs: bodyGapMs,
          cutCode: "ECONNRESET"
        });
        answered2.once("close", done);
        resolve2({ status: res.statusCode ?? 0, headers: headersOf(res), body: answered2 });
      });
      if (body === void 0 || typeof body === "string" || body instanceof Uint8Array) {
        req.end(body);
        return;
      }
      const declared = Number(r.headers["content-length"] ?? NaN);
      let sent = 0;
      body.on("data", (chunk) => sent += chunk.length);
      body.once("end", () => {
        if (!answered2 && !Number.isNaN(declared) && sent !== declared)
          fail2(lengthMismatch(sent, declared));
      });
      body.once("error", (e) => fail2(e));
      body.once("close", () => {
        if (body.readableEnded) return;
        if (!answered2) fail2(new Error("the upload stopped before its end"));
        else if (!req.writableFinished) {
          req.shouldKeepAlive = false;
          if (response?.readableEnded) req.destroy();
          else response?.once("end", () => req.destroy());
        }
      });
      body.pipe(req);
    });
  }
  /**
   * Closes idle connections now; exchanges still in flight (another merge's, when one failed)
   * get a second to finish, as on an HTTP/2 session, and their connections close as they end.
   */
  async close() {
    const agent = this.agent;
    const count = (pool) => Object.values(pool).reduce((n, sockets) => n + (sockets?.length ?? 0), 0);
    for (const sockets of Object.values(agent.freeSockets)) sockets?.forEach((s) => s.destroy());
    if (count(agent.sockets) === 0) return;
    await new Promise((resolve2) => {
      const timer = setTimeout(() => {
        agent.destroy();
        resolve2();
      }, 1e3);
      const check = () => {
        if (count(agent.sockets) > 0) return;
        clearTimeout(timer);
        resolve2();
      };
      agent.on("free", (socket) => {
        socket.destroy();
        setImmediate(check);
      });
      for (const sockets of Object.values(agent.sockets))
        sockets?.forEach((s) => s.once("close", () => setImmediate(check)));
    });
  }
  connect(host, port, https) {
    const timeoutMs = this.opts.connectTimeoutMs;
    if (!https) return dialTcp(host, port, timeoutMs);
    const origin = new URL(`https://${(0, import_node_net2.isIP)(host) === 6 ? `[${host}]` : host}:${port}`).origin;
    const spare = this.opts.takeSocket?.(origin);
    if (spare) return spare;
    const key = `${host}:${port}`;
    const alpn = ["http/1.1"];
    const session = this.tlsSessions.get(key);
    const socket = dialTls({ host, port, alpn, insecure: this.opts.insecure, timeoutMs, session });
    socket.on("session", (s) => this.tlsSessions.set(key, s));
    return socket;
  }
};
function headersOf(res) {
  const out = {};
  for (const [name, values2] of Object.entries(res.headersDistinct))
    if (values2) out[name] = values2.length === 1 ? values2[0] : values2;
  return out;
}
function cutBeforeAnswer() {
  return Object.assign(new Error("the registry closed the connection without an answer"), {
    code: "ECONNRESET"
  });
}
function lengthMismatch(sent, declared) {
  return Object.assign(
    new Error(`the upload sent ${sent} bytes where its Content-Length said ${declared}`),
    { code: "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH" }
  );
}

// src/registry/http2.ts
var import_node_stream2 = require("node:stream");
var REFUSED_STREAM = 7;
var CANCEL = 8;
var STREAM_WINDOW = 4 * 1024 * 1024;
var SESSION_WINDOW = 32 * 1024 * 1024;
var IDLE_MS2 = 3e4;
var CONNECTION_HEADERS = /* @__PURE__ */ new Set([
  "connection",
  "host",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade"
]);
var MAX_UNPROCESSED_RESENDS = 3;
var Http2Sessions = class {
  constructor(opts) {
    this.opts = opts;
  }
  opts;
  /** Per origin: its session, or undefined once it chose HTTP/1.1. */
  sessions = /* @__PURE__ */ new Map();
  /** A handshake's socket that chose HTTP/1.1, waiting for undici to take it (`takeSocket`). */
  spare = /* @__PURE__ */ new Map();
  /** The session for `url`'s origin, opened if need be; undefined where it speaks HTTP/1.1. */
  async session(url, stop) {
    for (; ; ) {
      let pending = this.sessions.get(url.origin);
      if (!pending) {
        pending = this.open(url);
        this.sessions.set(url.origin, pending);
        const opened = pending;
        opened.catch(() => this.forget(url.origin, opened));
      }
      const session = await untilAborted(pending, stop);
      if (!session || !session.closed && !session.destroyed) return session;
      this.forget(url.origin, pending);
    }
  }
  /**
   * `requestH2` on `session`, the origin's. A request the registry did not process (a stream it
   * refused, or a session that went away before the stream started) goes again on a new
   * connection, as RFC 9113, section 8.7 allows, when its body can be sent again: servers end
   * connections after so many requests (nginx's keepalive_requests) and that is no failure.
   */
  async send(session, request, stop) {
    const replayable = !(request.body instanceof import_node_stream2.Readable);
    for (let attempt = 1; ; attempt++) {
      const used = session;
      const onStall = () => {
        if (!used.closed) used.close();
      };
      try {
        return await requestH2({ ...request, session, onStall });
      } catch (e) {
        if (!replayable || attempt > MAX_UNPROCESSED_RESENDS || !unprocessed(e)) throw e;
        const next = await this.session(request.url, stop);
        if (!next) throw e;
        session = next;
      }
    }
  }
  /** The socket of a handshake that chose HTTP/1.1, once, if it is still open. */
  takeSocket(origin) {
    const socket = this.spare.get(origin);
    this.spare.delete(origin);
    if (!socket || socket.destroyed || !socket.writable) return void 0;
    socket.removeListener("error", ignore);
    return socket;
  }
  async close() {
    for (const socket of this.spare.values()) socket.destroy();
    this.spare.clear();
    const sessions = await Promise.all(
      [...this.sessions.values()].map((p) => p.catch(() => void 0))
    );
    this.sessions.clear();
    const open = sessions.filter((s) => !!s && !s.destroyed);
    await Promise.all(
      open.map(
        (s) => new Promise((resolve2) => {
          s.once("close", () => resolve2());
          if (!s.closed) s.close();
          setTimeout(() => s.destroy(), 1e3).unref();
        })
      )
    );
  }
  forget(origin, pending) {
    if (this.sessions.get(origin) === pending) this.sessions.delete(origin);
  }
  /** A TLS handshake offering h2 first; its answer decides how the origin is spoken to. */
  open(url) {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return new Promise((resolve2, reject) => {
      const socket = dialTls({
        host,
        port: Number(url.port || 443),
        alpn: ["h2", "http/1.1"],
        insecure: this.opts.insecure(url.host),
        timeoutMs: this.opts.requestTimeoutMs
      });
      socket.once("error", reject);
      socket.once("secureConnect", () => {
        socket.removeListener("error", reject);
        socket.setNoDelay(true);
        if (socket.alpnProtocol === "h2") {
          resolve2(this.start(url, socket));
          return;
        }
        socket.setKeepAlive(true, 6e4);
        socket.on("error", ignore);
        this.spare.get(url.origin)?.destroy();
        this.spare.set(url.origin, socket);
        resolve2(void 0);
      });
    });
  }
  start(url, socket) {
    socket.setKeepAlive(true, 6e4);
    const session = http2().connect(url.origin, {
      createConnection: () => socket,
      settings: {
        enablePush: false,
        initialWindowSize: STREAM_WINDOW,
        maxHeaderListSize: this.opts.maxHeaderBytes,
        // nghttp2 takes at most 8 CONTINUATION frames after HEADERS: with 16 KiB frames a
        // header block over ~144 KiB would fail the whole session.
        maxFrameSize: 64 * 1024
      },
      maxHeaderListPairs: 1024,
      // Node's cap on what a session may hold (MB), streams' windows included.
      maxSessionMemory: 128
    });
    session.once("connect", () => session.setLocalWindowSize(SESSION_WINDOW));
    session.setTimeout(IDLE_MS2, () => session.close());
    session.on("error", ignore);
    return session;
  }
};
function requestH2(request) {
  const { session, method, url, headers, body, timeoutMs, bodyGapMs, signal, onStall } = request;
  return new Promise((resolve2, reject) => {
    if (signal?.aborted) {
      reject(reasonOf(signal));
      return;
    }
    const sent = {
      ":method": method,
      ":scheme": "https",
      ":authority": url.host,
      ":path": url.pathname + url.search
    };
    for (const [name, value] of Object.entries(headers))
      if (!CONNECTION_HEADERS.has(name.toLowerCase())) sent[name.toLowerCase()] = value;
    if (typeof body === "string" || body instanceof Uint8Array)
      sent["content-length"] ??= String(Buffer.byteLength(body));
    let stream;
    try {
      stream = session.request(sent, { endStream: body === void 0 });
    } catch (e) {
      reject(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    let answered2;
    const fail2 = (e) => {
      if (!answered2) reject(stream.rstCode === REFUSED_STREAM ? refused(e) : e);
      else answered2.destroy(e);
      stream.destroy(e);
    };
    const onAbort = () => {
      const reason = reasonOf(signal);
      if (!answered2 && reason.code === "UND_ERR_HEADERS_TIMEOUT") onStall?.();
      fail2(reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    stream.on("error", (e) => fail2(e));
    stream.setTimeout(timeoutMs, () => {
      if (answered2) return;
      onStall?.();
      fail2(headersTimeout());
    });
    stream.once("close", () => {
      signal?.removeEventListener("abort", onAbort);
      if (!answered2) fail2(streamError("the registry closed the HTTP/2 stream without an answer"));
    });
    stream.once("response", (received) => {
      if (answered2) return;
      stream.setTimeout(0);
      answered2 = new ResponseBody({
        stream,
        // Ended by the registry (END_STREAM) has no reset code; a closed connection has one.
        complete: () => !stream.rstCode,
        // Stops the registry sending what nobody will read (RST_STREAM CANCEL); the connection stays.
        cancel: () => {
          if (!stream.destroyed) stream.close(CANCEL);
        },
        gapMs: bodyGapMs,
        onStall,
        cutCode: "ERR_HTTP2_STREAM_ERROR"
      });
      const out = {};
      for (const [name, value] of Object.entries(received))
        if (!name.startsWith(":")) out[name] = value;
      resolve2({ status: Number(received[":status"]), headers: out, body: answered2 });
    });
    if (typeof body === "string" || body instanceof Uint8Array) stream.end(body);
    else if (body) {
      body.once("error", (e) => fail2(e));
      body.once("close", () => {
        if (body.readableEnded) return;
        if (!answered2) fail2(new Error("the upload stopped before its end"));
        else if (!stream.writableEnded) stream.end();
      });
      body.pipe(stream);
    }
  });
}
function streamError(message) {
  return Object.assign(new Error(message), { code: "ERR_HTTP2_STREAM_ERROR" });
}
function ignore() {
}
var UNPROCESSED = /* @__PURE__ */ Symbol("unprocessed");
function refused(e) {
  return Object.assign(e, { [UNPROCESSED]: true });
}
function unprocessed(e) {
  const code = e?.code;
  if (code === "ERR_HTTP2_GOAWAY_SESSION" || code === "ERR_HTTP2_INVALID_SESSION") return true;
  return !!e?.[UNPROCESSED];
}
function untilAborted(p, stop) {
  if (!stop) return p;
  if (stop.aborted) return Promise.reject(reasonOf(stop));
  return new Promise((resolve2, reject) => {
    const onAbort = () => reject(reasonOf(stop));
    stop.addEventListener("abort", onAbort, { once: true });
    p.then(resolve2, reject).finally(() => stop.removeEventListener("abort", onAbort));
  });
}

// src/registry/proxy.ts
var import_node_net3 = require("node:net");
var NoProxy = class {
  all;
  /** `<-loopback>`: loopback hosts go through the proxy too. */
  proxyLoopback;
  entries = [];
  /** CIDR entries; created with the first (node:net's BlockList loads ~1.5 ms of modules). */
  ranges;
  constructor(list) {
    let all = false;
    let proxyLoopback = false;
    for (const raw of list.split(",")) {
      const item = raw.trim().toLowerCase();
      if (!item) continue;
      if (item === "*") all = true;
      else if (item === "<-loopback>") proxyLoopback = true;
      else if (!this.addRange(item)) this.entries.push(parseEntry(item));
    }
    this.all = all;
    this.proxyLoopback = proxyLoopback;
  }
  /**
   * Whether `url` goes direct. Loopback hosts (localhost, 127.0.0.0/8, [::1]) always do, as the
   * runner (`uri.IsLoopback`), @actions/http-client and docker (Go's httpproxy) all decide: a
   * registry on this machine is never behind the corporate proxy. Chromium's `<-loopback>` bypass
   * rule (https://chromium.googlesource.com/chromium/src/+/HEAD/net/docs/proxy.md, "Overriding
   * the implicit bypass rules") turns that off, for a proxy that must see loopback traffic: the
   * tests use it to prove traffic to their 127.0.0.1 registries went through a real proxy. Other
   * tools read it as a host name that matches nothing.
   */
  bypasses(url) {
    if (this.all) return true;
    if (!this.proxyLoopback && isLoopback(url.host)) return true;
    const host = url.hostname.toLowerCase();
    const port = url.port || (url.protocol === "https:" ? "443" : "80");
    const ip = unbracket(host);
    const family = (0, import_node_net3.isIP)(ip);
    if (family && this.ranges?.check(ip, family === 4 ? "ipv4" : "ipv6")) return true;
    return this.entries.some(
      (e) => (e.port === void 0 || e.port === port) && (host === e.host || !family && !(0, import_node_net3.isIP)(unbracket(e.host)) && host.endsWith(`.${e.host}`))
    );
  }
  /** `10.0.0.0/8`, `fd00::/8`: true when `item` is a CIDR range, now added. */
  addRange(item) {
    const m = /^\[?([^\]/]+)\]?\/(\d{1,3})$/.exec(item);
    const family = m ? (0, import_node_net3.isIP)(m[1]) : 0;
    if (!m || !family) return false;
    const prefix = Number(m[2]);
    if (prefix > (family === 4 ? 32 : 128)) return false;
    this.ranges ??= new import_node_net3.BlockList();
    this.ranges.addSubnet(m[1], prefix, family === 4 ? "ipv4" : "ipv6");
    return true;
  }
};
function parseEntry(item) {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(item);
  if (v6) return { host: bracketed(v6[1]), port: v6[2] };
  if ((0, import_node_net3.isIP)(item) === 6) return { host: bracketed(item) };
  const hp = /^(.*):(\d+)$/.exec(item);
  const [name, port] = hp ? [hp[1], hp[2]] : [item, void 0];
  return { host: name.replace(/^\*?\.+/, ""), port };
}
function bracketed(address) {
  try {
    return new URL(`http://[${address}]`).hostname;
  } catch {
    return `[${address}]`;
  }
}
function unbracket(host) {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
function pick(env, name) {
  for (const from of [name.toLowerCase(), name.toUpperCase()]) {
    const value = env[from]?.trim();
    if (value) return { from, value };
  }
  return void 0;
}
function readProxyEnv(env) {
  const http3 = pick(env, "http_proxy");
  const https = pick(env, "https_proxy");
  return {
    http: http3 && parseProxy(http3.from, http3.value),
    https: https && parseProxy(https.from, https.value),
    noProxy: new NoProxy(pick(env, "no_proxy")?.value ?? "")
  };
}
function proxyFor(env, url) {
  const proxy = url.protocol === "https:" ? env.https : env.http;
  return proxy && !env.noProxy.bypasses(url) ? proxy : void 0;
}
function parseProxy(from, value) {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url;
  try {
    url = new URL(text);
  } catch {
    return { from, problem: `${from} is not a URL: ${maskText(value)}` };
  }
  const shown = mask(url);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return {
      from,
      problem: `${from} names a ${url.protocol} proxy (${shown}): only http:// and https:// proxies are supported`
    };
  if (!url.hostname) return { from, problem: `${from} names no proxy host: ${shown}` };
  let user;
  let password;
  try {
    user = decodeURIComponent(url.username);
    password = decodeURIComponent(url.password);
  } catch {
    return { from, problem: `${from} has badly escaped credentials: ${shown}` };
  }
  const secrets = [...new Set([password, url.password].filter(Boolean))];
  const token = user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` : void 0;
  return { from, url: new URL(url.origin), shown, token, secrets };
}
function mask(url) {
  const user = url.username || url.password ? `${url.username}${url.password ? ":***" : ""}@` : "";
  return `${url.protocol}//${user}${url.host}`;
}
function maskText(value) {
  const at = value.lastIndexOf("@");
  return at < 0 ? value : `***${value.slice(at)}`;
}

// src/registry/transport.ts
var MAX_ERROR_BODY_BYTES = 64 * 1024;
var MAX_HEADER_BYTES = 256 * 1024;
var TRANSIENT_CODES = /* @__PURE__ */ new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  // An HTTP/2 stream reset (REFUSED_STREAM after a GOAWAY among them) or a broken session.
  "ERR_HTTP2_STREAM_ERROR",
  "ERR_HTTP2_SESSION_ERROR",
  "ERR_HTTP2_GOAWAY_SESSION",
  "ERR_HTTP2_INVALID_SESSION",
  "ERR_HTTP2_STREAM_CANCEL"
]);
var ProxyError = class extends Error {
  name = "ProxyError";
  code;
  /** The proxy's answer to CONNECT (or 407 to a plain-HTTP request). */
  status;
  constructor(message, details = {}) {
    super(message, details.cause === void 0 ? void 0 : { cause: details.cause });
    this.code = details.code;
    this.status = details.status;
  }
  /** A proxy that refused the connection, timed out, or could not reach the registry for now. */
  get transient() {
    if (this.status !== void 0) return this.status >= 502 && this.status <= 504;
    return !!this.code && TRANSIENT_CODES.has(this.code);
  }
};
var PROXY_UNREACHABLE = /* @__PURE__ */ new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT"
]);
var TruncatedBodyError = class extends Error {
  name = "TruncatedBodyError";
};
var BodyTooLargeError = class extends Error {
  name = "BodyTooLargeError";
};
function header(h, name) {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
function isTransientError(e) {
  if (e instanceof TruncatedBodyError) return true;
  if (e instanceof ProxyError) return e.transient;
  if (e instanceof RegistryError) return false;
  const code = e?.code;
  if (code && TRANSIENT_CODES.has(code)) return true;
  const cause = e?.cause;
  return !!cause?.code && TRANSIENT_CODES.has(cause.code);
}
function isTimeout(e) {
  const codes = ["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"];
  const err = e;
  return codes.includes(err?.code ?? "") || codes.includes(err?.cause?.code ?? "");
}
function isConnectionRefused(e) {
  const err = e;
  return err?.code === "ECONNREFUSED" || err?.cause?.code === "ECONNREFUSED";
}
function describeFailure(e) {
  if (e instanceof ProxyError) return e.message;
  const err = e;
  const code = err.code ?? err.cause?.code;
  const msg = err.cause?.message ?? err.message ?? String(e);
  return code && !msg.includes(code) ? `${code} (${msg})` : msg;
}
var Transport = class {
  constructor(opts) {
    this.opts = opts;
    this.pool = {
      keepAliveTimeout: 3e4,
      connections: maxConnections(opts.maxConcurrency),
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      maxHeaderSize: MAX_HEADER_BYTES
    };
    const env = opts.env ?? process.env;
    this.proxies = readProxyEnv(env);
    if (opts.http2 ?? env.MULTIARCH_MERGE_HTTP2 !== "false")
      this.h2 = new Http2Sessions({
        requestTimeoutMs: opts.requestTimeoutMs,
        maxHeaderBytes: MAX_HEADER_BYTES,
        insecure: (host) => opts.insecureHosts.has(host)
      });
    const secrets = [this.proxies.http, this.proxies.https].flatMap(
      (p) => p && "secrets" in p ? p.secrets : []
    );
    new Set(secrets).forEach((s) => opts.onSecret?.(s));
  }
  opts;
  requestCount = 0;
  proxies;
  /** Direct HTTP/1.1, per scheme and certificate check; created on first use. */
  pools = /* @__PURE__ */ new Map();
  /** Through each proxy (undici, loaded only then), verifying TLS or not. */
  dispatchers = /* @__PURE__ */ new Map();
  pool;
  /** HTTPS registries reached directly; through a proxy, HTTP/1.1 only. */
  h2;
  /** An HTTPS registry whose certificate is not verified (the user's `insecure-registries`). */
  insecure(url) {
    return url.protocol === "https:" && this.opts.insecureHosts.has(url.host);
  }
  http1(url) {
    const insecure = this.insecure(url);
    const key = `${url.protocol}${insecure ? " insecure" : ""}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const h2 = this.h2;
      pool = new Http1Pool({
        maxSockets: maxConnections(this.opts.maxConcurrency),
        connectTimeoutMs: this.opts.requestTimeoutMs,
        maxHeaderBytes: MAX_HEADER_BYTES,
        insecure,
        // An origin that chose HTTP/1.1 in the handshake offering h2 gets that connection first.
        takeSocket: h2 && ((origin) => h2.takeSocket(origin))
      });
      this.pools.set(key, pool);
    }
    return pool;
  }
  viaProxy(proxy, url) {
    const insecure = this.insecure(url);
    const key = `${proxy.from}${insecure ? " insecure" : ""}`;
    let dispatcher = this.dispatchers.get(key);
    if (!dispatcher) {
      dispatcher = this.proxyAgent(proxy, insecure);
      this.dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }
  /**
   * HTTPS through a CONNECT tunnel; plain HTTP as absolute-URI requests to the proxy, as curl and
   * docker send them (proxies often allow CONNECT to port 443 only). The registry's TLS options
   * go in `requestTls`: undici ignores `connect` for the tunnelled connection.
   */
  async proxyAgent(proxy, insecure) {
    const { Pool, ProxyAgent } = await Promise.resolve().then(() => __toESM(require("./chunks/undici.js"), 1));
    const timeout = this.opts.requestTimeoutMs;
    const pool = this.pool;
    return new ProxyAgent({
      ...pool,
      uri: proxy.url.href,
      token: proxy.token,
      proxyTunnel: false,
      requestTls: insecure ? { timeout, rejectUnauthorized: false } : { timeout },
      proxyTls: { timeout },
      // The pools undici makes per origin, and for plain HTTP to the proxy, get our limits
      // (header size, timeouts); the one that sends CONNECT gets the timeouts.
      factory: (origin, o) => new Pool(origin, { ...pool, ...o }),
      clientFactory: (origin, o) => new Pool(origin, { ...o, headersTimeout: timeout })
    });
  }
  /** One exchange; the body is left as a stream, which the caller must read or discard. */
  async exchange(method, url, headers, body, timeoutMs, stop) {
    this.requestCount++;
    const proxy = proxyFor(this.proxies, url);
    if (proxy && "problem" in proxy) throw new ProxyError(proxy.problem);
    const replayable = body === void 0 || typeof body === "string" || body instanceof Uint8Array;
    const ac = replayable ? new AbortController() : void 0;
    const timer = ac && setTimeout(() => ac.abort(headersTimeout()), timeoutMs);
    const signals = [ac?.signal, stop].filter((x) => x !== void 0);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const request = { method, url, headers, body, timeoutMs, signal };
    const bodyGapMs = this.opts.requestTimeoutMs;
    try {
      if (proxy) return await this.proxied(await this.viaProxy(proxy, url), proxy, request);
      const h2 = url.protocol === "https:" ? this.h2 : void 0;
      const session = await h2?.session(url, stop);
      if (h2 && session) return await h2.send(session, { ...request, bodyGapMs }, stop);
      return await this.http1(url).request({ ...request, bodyGapMs });
    } catch (e) {
      throw proxy && asProxyError(e, proxy, url) || e;
    } finally {
      clearTimeout(timer);
    }
  }
  async proxied(dispatcher, proxy, r) {
    const { method, url } = r;
    const res = await dispatcher.request({
      origin: url.origin,
      path: url.pathname + url.search,
      method,
      headers: r.headers,
      body: r.body,
      headersTimeout: r.timeoutMs,
      signal: r.signal,
      // undici closes the connection after a HEAD unless told otherwise, in case a server sends
      // a body anyway (nodejs/undici#258); registries do not, and every tag and blob check
      // would cost a new connection (a TLS handshake on HTTPS). A body that comes with the
      // answer makes undici drop the connection; one that comes later fails the next request
      // on it with a parse error.
      ...method === "HEAD" ? { reset: false } : {}
    });
    if (res.statusCode === 407 && url.protocol === "http:") {
      drop(res.body);
      throw proxyRefusal(proxy, url, 407);
    }
    return { status: res.statusCode, headers: res.headers, body: res.body };
  }
  /** Closes every connection; each kind may wait a second for exchanges in flight, together. */
  async close() {
    const proxied = async (d) => {
      const made = await d.catch(() => void 0);
      await made?.close();
    };
    await Promise.all([
      ...[...this.pools.values()].map((pool) => pool.close()),
      ...[...this.dispatchers.values()].map(proxied),
      this.h2?.close()
    ]);
  }
};
function maxConnections(maxConcurrency) {
  return maxConcurrency * 2 + 4;
}
function asProxyError(e, proxy, url) {
  if (e instanceof ProxyError) return e;
  const message = e?.message ?? "";
  const status = /^Proxy response \((\d{3})\) !== 200/.exec(message)?.[1];
  if (status) return proxyRefusal(proxy, url, Number(status), e);
  if (/^Proxy Authentication Required \(407\)/.test(message))
    return proxyRefusal(proxy, url, 407, e);
  const err = e;
  const code = err?.code ?? err?.cause?.code;
  if (code === "UND_ERR_PRX_TLS")
    return new ProxyError(
      `TLS error talking to the proxy ${proxy.shown} (from ${proxy.from}) to reach ${url.host}: ${describeFailure(e)}`,
      { code, cause: e }
    );
  if (!code || !PROXY_UNREACHABLE.has(code)) return void 0;
  return new ProxyError(
    `could not reach the proxy ${proxy.shown} (from ${proxy.from}) to reach ${url.host}: ${describeFailure(e)}`,
    { code, cause: e }
  );
}
function proxyRefusal(proxy, url, status, cause) {
  const via = `the proxy ${proxy.shown} (from ${proxy.from})`;
  const host = url.host;
  const auth = status === 407 || status === 401;
  const answer = `${status} ${status === 401 ? "Unauthorized" : "Proxy Authentication Required"}`;
  const message = auth ? proxy.token ? `${via} refused its credentials to reach ${host}: ${answer}` : `${via} asks for credentials to reach ${host} (${answer}): put them in ${proxy.from} as http://user:password@host:port` : status === 403 ? `${via} refused a tunnel to ${host}: 403 Forbidden (proxies often allow CONNECT to port 443 only)` : status >= 500 ? `${via} could not connect to ${host}: it answered CONNECT with ${status}` : `${via} refused a tunnel to ${host}: it answered CONNECT with ${status}`;
  return new ProxyError(message, { status, cause });
}
async function readBody(ex, max, gapMs) {
  const declared = Number(header(ex.headers, "content-length") ?? NaN);
  if (declared > max) {
    drop(ex.body);
    throw new BodyTooLargeError(`the response is ${declared} bytes, over the ${max}-byte limit`);
  }
  const body = await readUpTo(ex.body, max, gapMs);
  if (body === void 0) throw new BodyTooLargeError(`the response is over the ${max}-byte limit`);
  if (!Number.isNaN(declared) && body.length !== declared) {
    throw new TruncatedBodyError(`the response was cut short (${body.length} of ${declared} bytes)`);
  }
  return body;
}
async function readErrorBody(ex, gapMs) {
  const kept = await readUpTo(ex.body, MAX_ERROR_BODY_BYTES, gapMs, true);
  return kept ?? new Uint8Array();
}
function drop(stream) {
  stream.on("error", () => void 0);
  stream.destroy();
}
async function discardBody(ex, gapMs) {
  await readUpTo(ex.body, MAX_ERROR_BODY_BYTES, gapMs, true);
}
async function readUpTo(stream, max, gapMs, keepHead = false) {
  const chunks = [];
  let total = 0;
  const gap = setTimeout(() => stream.destroy(bodyTimeout()), gapMs);
  try {
    for await (const chunk of stream) {
      gap.refresh();
      const buf = chunk;
      if (total + buf.length > max) {
        drop(stream);
        if (!keepHead) return void 0;
        chunks.push(buf.subarray(0, max - total));
        return Buffer.concat(chunks);
      }
      total += buf.length;
      chunks.push(buf);
    }
  } catch (e) {
    if (isTransientError(e)) throw e;
    throw new TruncatedBodyError(
      `the connection broke while reading the response: ${e.message}`
    );
  } finally {
    clearTimeout(gap);
  }
  return Buffer.concat(chunks);
}

// src/registry/auth.ts
var MAX_TOKEN_BYTES = 1024 * 1024;
var NO_OAUTH_POST = /* @__PURE__ */ new Set([400, 401, 404, 405]);
var ACTION_ORDER = ["pull", "push"];
function describe(cred) {
  if (!cred) return "anonymously";
  return cred.username ? `as ${cred.username}` : "with an identity token";
}
function basicValue(cred) {
  const [user, secret2] = "password" in cred ? [cred.username, cred.password] : [cred.username || "<token>", cred.identityToken];
  return Buffer.from(`${user}:${secret2}`).toString("base64");
}
var Authenticator = class {
  constructor(send, credentials, onSecret = () => {
  }) {
    this.send = send;
    this.credentials = credentials;
    this.onSecret = onSecret;
  }
  send;
  credentials;
  onSecret;
  states = /* @__PURE__ */ new Map();
  pending = /* @__PURE__ */ new Map();
  /** registry -> resource ("repository:app") -> actions */
  scopes = /* @__PURE__ */ new Map();
  masked = /* @__PURE__ */ new Set();
  /** Declares that the run will need `actions` on `repository` of `registry`. */
  declare(registry, repository, actions) {
    this.addScope(registry, `repository:${repository}`, actions);
  }
  addScope(registry, resource, actions) {
    let resources = this.scopes.get(registry);
    if (!resources) this.scopes.set(registry, resources = /* @__PURE__ */ new Map());
    let set = resources.get(resource);
    if (!set) resources.set(resource, set = /* @__PURE__ */ new Set());
    for (const a of actions) set.add(a);
  }
  /** Adds the scopes a challenge asks for ("repository:a:pull,push repository:b:pull"). */
  addChallengeScopes(registry, scope) {
    const out = [];
    for (const s of (scope ?? "").split(/\s+/)) {
      const i = s.lastIndexOf(":");
      if (i <= 0 || s.indexOf(":") === i) continue;
      this.addScope(registry, s.slice(0, i), s.slice(i + 1).split(","));
      out.push(s);
    }
    return out;
  }
  /** Push scopes first: some registries read only the first scope of a request. */
  scopeList(registry) {
    const rank = (a) => {
      const i = ACTION_ORDER.indexOf(a);
      return i === -1 ? ACTION_ORDER.length : i;
    };
    const all = [...this.scopes.get(registry)?.entries() ?? []].map(([resource, set]) => ({
      push: set.has("push"),
      scope: `${resource}:${[...set].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(",")}`
    }));
    return [...all.filter((s) => s.push), ...all.filter((s) => !s.push)].map((s) => s.scope);
  }
  state(registry) {
    let s = this.states.get(registry);
    if (!s) this.states.set(registry, s = { who: "anonymously", generation: 0 });
    return s;
  }
  /** Counts credential changes: a 401 to an older generation is retried, not refreshed again. */
  generation(registry) {
    return this.state(registry).generation;
  }
  /** The credential for requests to the registry's own origin ("Basic ...", "Bearer ..."). */
  credential(registry) {
    return this.state(registry).value;
  }
  /** The error for a 401 that a fresh credential did not cure. */
  refusal(registry, repo, where) {
    const s = this.state(registry);
    const details = { status: 401, registry, repository: repo };
    if (s.scheme === "basic") {
      return new RegistryError(
        `registry ${registry} refused the credentials ${s.who} for ${repo} (HTTP 401): check the username and password for ${registry} and that they may access ${repo}`,
        details
      );
    }
    const hint = s.who === "anonymously" ? `no credentials are configured for ${registry} (log in with docker/login-action or set the username/password inputs)` : `check the credentials for ${registry} and that they may access ${repo}`;
    return new RegistryError(`registry ${registry} refused ${where} ${s.who}: ${hint}`, details);
  }
  /**
   * Handles a 401 seen while using `generation`. Concurrent callers share one token request;
   * a caller whose generation is already stale just retries with the newer token.
   */
  async refresh(registry, generation, wwwAuthenticate, repo) {
    const s = this.state(registry);
    if (s.generation !== generation) return;
    let p = this.pending.get(registry);
    if (!p) {
      p = this.authenticate(registry, wwwAuthenticate, repo).finally(
        () => this.pending.delete(registry)
      );
      this.pending.set(registry, p);
    }
    await p;
  }
  mask(secret2) {
    if (!secret2 || this.masked.has(secret2)) return;
    this.masked.add(secret2);
    this.onSecret(secret2);
  }
  /** The registry's credential, masked before anything can print it. */
  async stored(registry) {
    const cred = await this.credentials.get(registry, this.scopeList(registry));
    if (cred) {
      this.mask("password" in cred ? cred.password : cred.identityToken);
      this.mask(basicValue(cred));
    }
    return cred;
  }
  async authenticate(registry, wwwAuthenticate, repo) {
    const s = this.state(registry);
    const details = { status: 401, registry, repository: repo };
    const challenges = parseChallenges(wwwAuthenticate);
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    if (!bearer && !basic) {
      throw new RegistryError(
        `registry ${registry} refused access to ${repo} (401) without a usable WWW-Authenticate challenge`,
        details
      );
    }
    const cred = await this.stored(registry);
    if (bearer) {
      const token = await this.fetchToken(registry, bearer, cred, repo);
      this.mask(token);
      s.value = `Bearer ${token}`;
      s.scheme = "bearer";
    } else {
      if (!cred) {
        throw new RegistryError(
          `registry ${registry} requires a username and password for ${repo}, and none were given (log in with docker/login-action or set the username/password inputs)`,
          details
        );
      }
      const value = `Basic ${basicValue(cred)}`;
      if (s.value === value) throw this.refusal(registry, repo, repo);
      s.value = value;
      s.scheme = "basic";
    }
    s.who = describe(cred);
    s.generation++;
  }
  async fetchToken(registry, c, cred, repo) {
    const realm = c.params.realm;
    if (!realm || !URL.canParse(realm)) {
      throw new RegistryError(
        `registry ${registry} sent a Bearer challenge without a usable realm`,
        { status: 401, registry, repository: repo }
      );
    }
    const u = new URL(realm);
    if (cred && u.protocol !== "https:" && !isLoopback(u.host)) {
      throw new RegistryError(
        `registry ${registry} named a token realm on plain HTTP (${u.origin}): credentials are not sent there`,
        { status: 401, registry, repository: repo }
      );
    }
    const asked = this.addChallengeScopes(registry, c.params.scope);
    const all = this.scopeList(registry);
    const ask = (scopes) => this.tokenRequest({ registry, repo, realm, service: c.params.service, scopes, cred });
    try {
      return await ask(all);
    } catch (e) {
      const needed = asked.length ? asked : all.filter((s) => s.startsWith(`repository:${repo}:`));
      if (needed.length === 0 || needed.length >= all.length) throw e;
      return ask(needed);
    }
  }
  async tokenRequest(t) {
    let res;
    if (t.cred && "identityToken" in t.cred) {
      res = await this.postToken(t, t.cred.identityToken);
      if (NO_OAUTH_POST.has(res.status)) res = void 0;
    }
    res ??= await this.getToken(t);
    const { registry, repo } = t;
    const host = new URL(t.realm).host;
    const details = { registry, repository: repo, request: "token request", status: res.status };
    if (res.status !== 200) {
      const { text, code } = describeErrorBody(Buffer.from(res.body).toString("utf8"));
      const detail = `token server ${host} answered HTTP ${res.status}${text ? ` (${text})` : ""}`;
      if (res.status === 401 || res.status === 403) {
        const hint = t.cred ? `check the credentials for ${registry} and that they may access ${repo}` : "no credentials are configured for it: log in with docker/login-action or set the username/password inputs";
        throw new RegistryError(
          `registry ${registry} refused access ${describe(t.cred)} to ${repo}: ${detail}; ${hint}`,
          { ...details, status: 401, code }
        );
      }
      throw new RegistryError(
        `token request for ${repo} on registry ${registry} (${t.scopes.join(" ")}) failed ${describe(t.cred)}: ${detail}`,
        { ...details, code }
      );
    }
    let doc;
    try {
      doc = JSON.parse(Buffer.from(res.body).toString("utf8"));
    } catch {
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned a response that is not JSON (content-type ${header(res.headers, "content-type") ?? "none"})`,
        details
      );
    }
    const token = doc.token || doc.access_token;
    if (typeof token !== "string" || !token)
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned no token`,
        details
      );
    if (!/^[\x21-\x7e]+$/.test(token))
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned a token with characters a header cannot carry`,
        details
      );
    return token;
  }
  /** A token request: outside the limiter, Basic credentials to the realm's origin only. */
  sendToken(t, method, url, init) {
    return this.send({
      repo: { registry: t.registry, repository: t.repo },
      method,
      url,
      what: `token for ${t.repo}`,
      label: "token request",
      expect: "any",
      read: { maxBytes: MAX_TOKEN_BYTES, limitName: "token responses" },
      unlimited: true,
      token: {},
      ...init
    });
  }
  getToken(t) {
    const u = new URL(t.realm);
    if (t.service) u.searchParams.set("service", t.service);
    for (const s of t.scopes) u.searchParams.append("scope", s);
    if (t.cred?.username) u.searchParams.set("account", t.cred.username);
    const credential = t.cred && `Basic ${basicValue(t.cred)}`;
    return this.sendToken(t, "GET", u.toString(), { token: { credential } });
  }
  /** OAuth2 refresh-token grant, as docker does with identity tokens. */
  postToken(t, identityToken) {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: identityToken,
      client_id: "multiarch-merge"
    });
    if (t.service) form.set("service", t.service);
    if (t.scopes.length) form.set("scope", t.scopes.join(" "));
    const body = form.toString();
    return this.sendToken(t, "POST", t.realm, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: () => body
    });
  }
};

// src/registry/retry.ts
function retryAfterMs(value, now = Date.now()) {
  if (!value) return void 0;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1e3;
  const t = Date.parse(value);
  return Number.isNaN(t) ? void 0 : Math.max(0, t - now);
}
var RetryPolicy = class {
  constructor(opts) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }
  opts;
  now;
  /**
   * The wait before the retry that follows failed attempt `attempt` (0 = first), or the error to
   * throw when retries or the budget have run out. `what` names the request in that error.
   */
  delayAfter(attempt, failure, what, details) {
    const { retries, deadline } = this.opts;
    const cap = this.opts.maxRetryDelayMs ?? 3e4;
    const base = this.opts.baseDelayMs ?? 500;
    const attempts = attempt + 1;
    const last = `last error: ${failure.reason}`;
    const err = { ...details, status: failure.status };
    if (attempt >= retries) {
      throw new RetriesExhaustedError(
        `${what} failed after ${attempts} attempt(s): the retry budget is exhausted (retries: ${retries}); ${last}`,
        err,
        attempts,
        false
      );
    }
    const backoff = Math.min(cap, base * 2 ** attempt);
    const delay = failure.hintedMs !== void 0 ? Math.min(cap, failure.hintedMs) : Math.round(backoff / 2 + (this.opts.random ?? Math.random)() * backoff / 2);
    const left = deadline === void 0 ? Infinity : deadline - this.now();
    if (delay >= left) {
      const asked = failure.hintedMs !== void 0 ? ` (the registry asked to wait ${failure.hintedMs} ms)` : "";
      throw new RetriesExhaustedError(
        `${what} failed after ${attempts} attempt(s): the time budget (input timeout) is exhausted (${Math.max(0, Math.round(left))} ms left, the next retry would wait ${delay} ms${asked}); ${last}`,
        err,
        attempts,
        true
      );
    }
    return delay;
  }
  sleep(ms) {
    return this.opts.sleep?.(ms) ?? new Promise((r) => setTimeout(r, ms));
  }
  /**
   * How long attempt `attempt` (0 = first) may wait for headers or between body chunks: a retry
   * gets no more than what is left of the budget, so a registry that stalls for good fails near
   * the deadline, not one timeout after it.
   */
  timeoutFor(attempt, requestTimeoutMs) {
    const { deadline } = this.opts;
    if (attempt === 0 || deadline === void 0) return requestTimeoutMs;
    return Math.max(1, Math.min(requestTimeoutMs, deadline - this.now()));
  }
};

// src/registry/request.ts
var MAX_REDIRECTS = 5;
var FINAL_GRACE_MS = 2e4;
var MAX_TIMEOUT_RETRIES = 4;
var REDIRECTS = /* @__PURE__ */ new Set([301, 302, 303, 307, 308]);
var TLS_HINT = /HTTP request to an HTTPS server/i;
var RequestPath = class {
  constructor(opts) {
    this.opts = opts;
    this.transport = new Transport(opts);
    this.retry = new RetryPolicy(opts);
    if (opts.deadline !== void 0 && !opts.now) {
      const left = Math.max(0, opts.deadline - Date.now());
      this.expired = AbortSignal.timeout(left);
      this.expiredFinal = AbortSignal.timeout(left + FINAL_GRACE_MS);
      (0, import_node_events.setMaxListeners)(0, this.expired, this.expiredFinal);
    }
    this.limiter = new Limiter(opts.maxConcurrency);
    this.auth = new Authenticator((r) => this.send(r), opts.credentials, opts.onSecret);
  }
  opts;
  auth;
  retryCount = 0;
  transport;
  retry;
  limiter;
  schemes = /* @__PURE__ */ new Map();
  /** Aborted when the step's budget runs out: every exchange and body read stops then. */
  expired;
  /** The same, a little later, for tag pushes and their rollback (requests marked `final`). */
  expiredFinal;
  get requestCount() {
    return this.transport.requestCount;
  }
  close() {
    return this.transport.close();
  }
  /** Docker talks plain HTTP to loopback registries first; everything else is HTTPS. */
  origin(registry) {
    const scheme = this.schemes.get(registry) ?? (isLoopback(registry) ? "http" : "https");
    return `${scheme}://${apiHost(registry)}`;
  }
  /** Sends `r`, retrying transient failures within the budget; anything unexpected throws. */
  async send(r) {
    let refreshed = false;
    let switched = false;
    let unauthorized = 0;
    let timeouts = 0;
    const stop = r.final ? this.expiredFinal : this.expired;
    for (let attempt = 0; ; ) {
      const session = r.session && await r.session(attempt);
      const url = this.resolve(r, session?.url ?? r.url);
      const generation = this.auth.generation(r.repo.registry);
      let out;
      try {
        out = await this.limited(r, () => this.attempt(r, url, attempt, generation, stop));
      } catch (e) {
        if (stop?.aborted) throw this.outOfTime(r, url, e);
        await session?.abandon();
        if (!isTransientError(e) || isConnectionRefused(e) && attempt > 0)
          throw this.failure(r, url, e);
        if (isTimeout(e) && ++timeouts > Math.min(this.opts.retries, MAX_TIMEOUT_RETRIES))
          throw this.silent(r, url, timeouts, e);
        await this.backOff(r, url, attempt++, { reason: describeFailure(e), cause: e });
        continue;
      }
      if (!("generation" in out)) return out;
      await session?.abandon();
      if (out.status === 401 && !r.token && this.isRegistry(r, out.url)) {
        const renewed = this.auth.generation(r.repo.registry) !== out.generation;
        if (renewed && ++unauthorized < 4) continue;
        if (out.generation > 0) {
          if (refreshed) throw this.auth.refusal(r.repo.registry, r.repo.repository, this.where(r));
          refreshed = true;
        }
        const challenge = header(out.headers, "www-authenticate");
        await this.auth.refresh(r.repo.registry, out.generation, challenge, r.repo.repository);
        continue;
      }
      if (!switched && await this.speaksTls(r, out.url, out)) {
        this.schemes.set(r.repo.registry, "https");
        switched = true;
        continue;
      }
      if (isRetryableStatus(out.status)) {
        const hintedMs = retryAfterMs(header(out.headers, "retry-after"), this.retry.now());
        await this.backOff(r, url, attempt++, { ...this.statusText(out), hintedMs });
        continue;
      }
      throw this.refused(r, out);
    }
  }
  limited(r, fn) {
    return r.unlimited ? fn() : this.limiter.run(fn);
  }
  /** A path resolves against the registry's origin; an absolute URL on its old origin follows a TLS switch. */
  resolve(r, target) {
    const origin = this.origin(r.repo.registry);
    const url = new URL(target, origin + "/");
    if (!r.token && url.protocol === "http:" && url.origin === origin.replace(/^https:/, "http:"))
      url.protocol = new URL(origin).protocol;
    return url;
  }
  isRegistry(r, url) {
    return url.origin === this.origin(r.repo.registry);
  }
  /** One attempt, redirects included: the response, or the refusal to decide on. */
  async attempt(r, start, attempt, generation, stop) {
    const timeout = this.retry.timeoutFor(attempt, this.opts.requestTimeoutMs);
    const body = await r.body?.(attempt);
    let url = start;
    try {
      for (let hop = 0; ; hop++) {
        const ex = await this.transport.exchange(
          r.method,
          url,
          this.headersFor(r, url),
          body,
          timeout,
          stop
        );
        this.opts.onResponse?.(url.toString(), ex.headers);
        const location = header(ex.headers, "location");
        if (this.follows(r, ex.status) && location) {
          await discardBody(ex, timeout);
          if (hop >= MAX_REDIRECTS)
            throw this.error(r, `too many redirects (over ${MAX_REDIRECTS})`);
          url = this.redirectTarget(r, url, location);
          continue;
        }
        if (r.expect === "any" ? !isRetryableStatus(ex.status) : r.expect.includes(ex.status))
          return await this.accept(r, ex, url, timeout);
        const refusal = await readErrorBody(ex, timeout);
        return { status: ex.status, headers: ex.headers, url, body: refusal, generation };
      }
    } finally {
      if (isStream(body) && !body.readableEnded) body.destroy();
    }
  }
  /**
   * The Authorization header for `url`, set here and nowhere else: the registry's credentials go
   * to the registry's own origin only, a token request's to the realm it was sent to, and no
   * redirect or upload Location on another origin gets any.
   */
  headersFor(r, url) {
    const credential = r.token ? url.origin === new URL(r.url).origin && r.token.credential : this.isRegistry(r, url) && this.auth.credential(r.repo.registry);
    return credential ? { ...r.headers, authorization: credential } : { ...r.headers };
  }
  /** Redirects are followed for reads only, unless the caller wants to see them. */
  follows(r, status) {
    if (!REDIRECTS.has(status)) return false;
    if (r.expect !== "any" && r.expect.includes(status)) return false;
    return r.method === "GET" || r.method === "HEAD";
  }
  redirectTarget(r, from, location) {
    let next;
    try {
      next = new URL(location, from);
    } catch {
      throw this.error(r, `the registry redirected to an invalid URL`);
    }
    if (next.protocol !== "https:" && next.protocol !== "http:")
      throw this.error(
        r,
        `the registry redirected to a ${next.protocol} URL, which is not followed`
      );
    return next;
  }
  async accept(r, ex, url, timeout) {
    const out = { status: ex.status, headers: ex.headers, url: url.toString() };
    const read = r.read ?? "none";
    if (read === "stream") return { ...out, body: new Uint8Array(), stream: ex.body };
    if (read === "none" || r.method === "HEAD") {
      await discardBody(ex, timeout);
      return { ...out, body: new Uint8Array() };
    }
    try {
      return { ...out, body: await readBody(ex, read.maxBytes, timeout) };
    } catch (e) {
      if (!(e instanceof BodyTooLargeError)) throw e;
      throw this.error(
        r,
        `${r.what} on registry ${r.repo.registry} is larger than ${mib(read.maxBytes)}, the limit for ${read.limitName}`,
        { cause: e }
      );
    }
  }
  /**
   * Whether a 400 to a loopback registry over plain HTTP is Go's answer to HTTP on a TLS port. A
   * HEAD answer has no body to tell by, so /v2/ is asked with a GET.
   */
  async speaksTls(r, url, out) {
    if (out.status !== 400 || r.token || url.protocol !== "http:") return false;
    if (!isLoopback(r.repo.registry) || url.host !== apiHost(r.repo.registry)) return false;
    if (this.origin(r.repo.registry).startsWith("https:")) return true;
    if (TLS_HINT.test(Buffer.from(out.body).toString("utf8"))) return true;
    if (r.method !== "HEAD") return false;
    const probe = await this.send({
      repo: r.repo,
      method: "GET",
      url: `${url.origin}/v2/`,
      what: "GET /v2/",
      expect: "any",
      read: { maxBytes: 64 * 1024, limitName: "error bodies" }
    }).catch(() => void 0);
    return !!probe && TLS_HINT.test(Buffer.from(probe.body).toString("utf8"));
  }
  async backOff(r, url, attempt, failure) {
    const what = `${r.label ?? `${r.method} ${url.pathname}`} on ${url.host}`;
    const details = { ...this.details(r), status: failure.status, cause: failure.cause };
    if (r.once) throw new RegistryError(`${what} failed: ${failure.reason}`, details);
    const delayMs = this.retry.delayAfter(attempt, failure, what, details);
    this.retryCount++;
    this.opts.onRetry?.({
      url: url.toString(),
      attempt: attempt + 1,
      delayMs,
      reason: failure.reason
    });
    await this.retry.sleep(delayMs);
  }
  statusText(out) {
    const { code, text, detail } = describeErrorBody(Buffer.from(out.body).toString("utf8"));
    const reason = `HTTP ${out.status}${text ? ` (${text})` : ""}`;
    return { reason, status: out.status, code, detail };
  }
  /** "app/x (GET /v2/app/x/manifests/1)", for network errors. */
  where(r) {
    return `${repoName(r.repo)} (${r.method} ${r.url.split("?")[0]})`;
  }
  details(r) {
    return { registry: r.repo.registry, repository: r.repo.repository, request: this.asked(r) };
  }
  /** "GET manifest app:1", or the caller's label. */
  asked(r) {
    return r.label ?? `${r.method} ${r.what}`;
  }
  error(r, message, more = {}) {
    return new RegistryError(message, { ...this.details(r), ...more });
  }
  /** A status the caller did not expect, not worth retrying. */
  refused(r, out) {
    const { reason, status, code, detail } = this.statusText(out);
    const error = this.error(r, `${this.asked(r)} in ${repoName(r.repo)} failed: ${reason}`, {
      status,
      code,
      detail
    });
    const advice = adviceFor(error, r.method);
    if (advice) error.message += `: ${advice}`;
    return error;
  }
  /** Attempt after attempt timed out: the registry takes connections but does not answer. */
  silent(r, url, attempts, e) {
    const who = r.token ? `token server ${url.host}` : `registry ${r.repo.registry}`;
    return this.error(
      r,
      `${this.asked(r)} in ${repoName(r.repo)}: ${who} did not answer in time, ${attempts} times (${seconds(this.opts.requestTimeoutMs)} each); last error: ${describeFailure(e)}`,
      { cause: e }
    );
  }
  outOfTime(r, url, e) {
    const who = r.token ? `token server ${url.host} of registry ${r.repo.registry}` : `registry ${r.repo.registry}`;
    return this.error(
      r,
      `${this.asked(r)} in ${repoName(r.repo)}: the step's time budget (input timeout) ran out while waiting for ${who}`,
      { cause: e }
    );
  }
  /** A failure that is not an HTTP status: TLS, an unreachable host, or one of our own errors. */
  failure(r, url, e) {
    if (e instanceof RegistryError) return e;
    if (e instanceof ProxyError)
      return this.error(r, `${this.asked(r)} in ${repoName(r.repo)}: ${e.message}`, { cause: e });
    const err = e;
    const code = err.cause?.code ?? err.code ?? "";
    const msg = err.cause?.message ?? err.message ?? String(e);
    const host = r.token ? `token server ${url.host} of registry ${r.repo.registry}` : `registry ${r.repo.registry}`;
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code + msg)) {
      return this.error(
        r,
        `TLS error talking to ${host} for ${this.where(r)}: ${msg}. Trust its CA with NODE_EXTRA_CA_CERTS, or list it in insecure-registries`,
        { cause: e }
      );
    }
    return this.error(
      r,
      `cannot reach ${host} for ${this.where(r)}: ${code ? code + " " : ""}${msg}`,
      {
        cause: e
      }
    );
  }
};
function isStream(body) {
  return body !== void 0 && typeof body !== "string" && !(body instanceof Uint8Array);
}
function seconds(ms) {
  return ms < 1e3 ? `${ms} ms` : `${Math.round(ms / 1e3)} s`;
}
function mib(bytes) {
  return `${bytes / 1024 / 1024} MiB`;
}

// src/registry/upload.ts
async function upload(send, spec) {
  const { target } = spec;
  let opened = spec.session;
  await send({
    repo: target,
    method: "PUT",
    url: `/v2/${target.repository}/blobs/uploads/`,
    what: spec.label,
    label: spec.label,
    expect: [201, 204],
    headers: { "content-type": "application/octet-stream", "content-length": String(spec.size) },
    body: spec.open,
    session: async () => {
      const location = opened ?? await startSession(send, target);
      opened = void 0;
      return {
        url: withQuery(location, "digest", spec.digest),
        abandon: () => cancelSession(send, target, location)
      };
    }
  });
}
async function startSession(send, target) {
  const res = await send({
    repo: target,
    method: "POST",
    url: `/v2/${target.repository}/blobs/uploads/`,
    what: "blob upload",
    expect: [202],
    headers: { "content-length": "0" }
  });
  const location = header(res.headers, "location");
  if (!location) {
    throw new RegistryError(
      `registry ${target.registry} opened an upload session in ${target.repository} without a Location`,
      { registry: target.registry, repository: target.repository, request: "POST blob upload" }
    );
  }
  return location;
}
async function cancelSession(send, target, location) {
  await send({
    repo: target,
    method: "DELETE",
    url: location,
    what: "blob upload session",
    expect: "any",
    once: true
  }).catch(() => void 0);
}
function withQuery(location, name, value) {
  const absolute = URL.canParse(location);
  const u = new URL(location, "http://relative.invalid");
  u.searchParams.set(name, value);
  return absolute ? u.toString() : u.pathname + u.search;
}

// src/registry/client.ts
var MAX_CONFIG_BYTES = 16 * 1024 * 1024;
var MAX_REFERRERS = 1024;
var MANIFESTS = { maxBytes: MAX_MANIFEST_BYTES, limitName: "manifests" };
var REFERRERS_REDIRECTS = [301, 302, 303, 307, 308];
var RegistryClient = class {
  path;
  constructor(opts) {
    this.path = new RequestPath(opts);
  }
  /** Requests sent (every exchange, redirects and retries included) and retries made. */
  get stats() {
    return { requests: this.path.requestCount, retries: this.path.retryCount };
  }
  close() {
    return this.path.close();
  }
  /** Declare every repository up front so one token per registry covers them all. */
  declare(repo, actions) {
    this.path.auth.declare(repo.registry, repo.repository, actions);
  }
  request(r) {
    return this.path.send(r);
  }
  /**
   * GETs a manifest. By digest, the bytes are verified against it; by tag, against the
   * Docker-Content-Digest the registry sends. The bytes are kept exactly as received.
   */
  async getManifest(repo, reference, o = {}) {
    const what = `manifest ${repoName(repo)}${reference.includes(":") ? "@" : ":"}${reference}`;
    let res;
    try {
      res = await this.request({
        repo,
        method: "GET",
        url: `/v2/${repo.repository}/manifests/${reference}`,
        what,
        expect: [200],
        headers: { accept: MANIFEST_ACCEPT },
        read: MANIFESTS,
        final: o.final
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw new RegistryError(`${what} not found on registry ${repo.registry}`, {
        ...detailsOf(e),
        code: "MANIFEST_UNKNOWN"
      });
    }
    const bytes = res.body;
    const doc = documentFields(bytes);
    const mediaType = doc.mediaType ?? (header(res.headers, "content-type") ?? "").split(";")[0].trim();
    if (doc.schemaVersion === 1 || isSchema1Type(mediaType)) throw schema1Error();
    const expected = reference.includes(":") ? reference : servedDigest(res, repo, what);
    if (!expected) return { bytes, mediaType, digest: digestOf(bytes, "sha256") };
    verifyDigest(bytes, expected, `${what} from registry ${repo.registry}`);
    return { bytes, mediaType, digest: expected };
  }
  /** HEADs a manifest; undefined when absent (404, or 403 as Artifactory answers for missing tags). */
  async headManifest(repo, reference, o = {}) {
    let res;
    try {
      res = await this.request({
        repo,
        method: "HEAD",
        url: `/v2/${repo.repository}/manifests/${reference}`,
        what: `manifest ${reference}`,
        expect: [200],
        headers: { accept: MANIFEST_ACCEPT },
        final: o.final
      });
    } catch (e) {
      if (isAbsent(e)) return void 0;
      throw e;
    }
    const digest = servedDigest(res, repo, `manifest ${reference}`);
    if (!digest) {
      const m = await this.getManifest(repo, reference, o);
      return { digest: m.digest, mediaType: m.mediaType, size: m.bytes.length };
    }
    return {
      digest,
      mediaType: (header(res.headers, "content-type") ?? "").split(";")[0].trim(),
      size: Number(header(res.headers, "content-length") ?? 0)
    };
  }
  /** PUTs manifest bytes as they are and checks the registry's digest equals ours. */
  async putManifest(repo, reference, m, o = {}) {
    const res = await this.request({
      repo,
      method: "PUT",
      url: `/v2/${repo.repository}/manifests/${reference}`,
      what: `manifest ${reference}`,
      expect: [200, 201],
      headers: { "content-type": m.mediaType },
      body: () => m.bytes,
      final: o.final
    });
    const served = servedDigest(res, repo, `manifest ${reference}`);
    if (served && served !== m.digest) {
      throw new RegistryError(
        `registry ${repo.registry} stored manifest ${reference} in ${repoName(repo)} under digest ${served}, but the bytes sent hash to ${m.digest}`,
        {
          registry: repo.registry,
          repository: repo.repository,
          request: `PUT manifest ${reference}`
        }
      );
    }
  }
  /**
   * Lists the referrers of `digest`: the referrers API when the registry has it, else the
   * fallback tag `sha256-<hex>` (an index of referrers). Returns the descriptors and how found.
   */
  async listReferrers(repo, digest) {
    const what = `referrers of ${digest} in ${repoName(repo)} on registry ${repo.registry}`;
    const descriptors = [];
    let url = `/v2/${repo.repository}/referrers/${digest}`;
    for (let page = 0; url && page < 100; page++) {
      let res;
      try {
        res = await this.request({
          repo,
          method: "GET",
          url,
          what: `referrers of ${digest}`,
          // GHCR answers the endpoint with 303 See Other to another host, which rate-limits and
          // truncates the digest (dataaxiom/ghcr-cleanup-action#13): not followed, the tag
          // fallback is used instead.
          expect: page === 0 ? [200, ...REFERRERS_REDIRECTS] : [200],
          headers: { accept: OCI_INDEX },
          read: MANIFESTS
        });
      } catch (e) {
        if (page === 0 && isUnsupported(e)) break;
        throw e;
      }
      if (res.status !== 200) break;
      descriptors.push(...indexEntries(res.body, what));
      if (descriptors.length > MAX_REFERRERS)
        throw new RegistryError(`${what}: more than ${MAX_REFERRERS} referrers`, {
          registry: repo.registry,
          repository: repo.repository
        });
      url = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, "link") ?? "")?.[1];
      if (url) url = new URL(url, res.url).toString();
      else return { via: "api", descriptors };
    }
    if (descriptors.length) return { via: "api", descriptors };
    let m;
    try {
      m = await this.getManifest(repo, referrersTag(digest));
    } catch (e) {
      if (isAbsent(e)) return { via: "tag", descriptors: [] };
      throw e;
    }
    if (!isIndexType(m.mediaType))
      throw new RegistryError(
        `${what}: the tag ${referrersTag(digest)} holds a manifest of type ${JSON.stringify(m.mediaType.slice(0, 100))}, not an index of referrers; it is left as it is`,
        { registry: repo.registry, repository: repo.repository }
      );
    return { via: "tag", descriptors: indexEntries(m.bytes, what), fallback: m };
  }
  /** Whether the blob is in `repo`; a redirect to storage counts as present. */
  async blobExists(repo, digest) {
    try {
      await this.request({
        repo,
        method: "HEAD",
        url: `/v2/${repo.repository}/blobs/${digest}`,
        what: `blob ${digest}`,
        expect: [200, 302, 307]
      });
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }
  /** GETs a small blob (an image config) into memory, verified against its digest. */
  async getBlob(repo, digest) {
    let res;
    try {
      res = await this.request({
        repo,
        method: "GET",
        url: `/v2/${repo.repository}/blobs/${digest}`,
        what: `blob ${digest}`,
        expect: [200],
        read: { maxBytes: MAX_CONFIG_BYTES, limitName: "configs" }
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      throw new RegistryError(
        `blob ${digest} not found in ${repoName(repo)} on registry ${repo.registry}`,
        { ...detailsOf(e), code: "BLOB_UNKNOWN" }
      );
    }
    verifyDigest(res.body, digest, `blob ${digest} from ${repoName(repo)}`);
    return res.body;
  }
  /**
   * Tries a cross-repository mount. Returns 'mounted', or the Location of the upload session
   * the registry opened instead (202), or nothing when it refused outright (Harbor answers 401,
   * others 400 or 404), in which case the caller uploads.
   */
  async mountBlob(target, digest, from) {
    let res;
    try {
      res = await this.request({
        repo: target,
        method: "POST",
        url: `/v2/${target.repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from.repository)}`,
        what: `mount of blob ${digest} from ${from.repository}`,
        expect: [201, 202],
        headers: { "content-length": "0" }
      });
    } catch (e) {
      if (isRefused(e)) return {};
      throw e;
    }
    if (res.status === 201) return "mounted";
    return { location: header(res.headers, "location") };
  }
  /** Uploads a small blob held in memory (one POST, one PUT); false when the target had it. */
  async uploadBlob(target, digest, bytes) {
    if (await this.blobExists(target, digest)) return false;
    await upload((r) => this.request(r), {
      target,
      digest,
      size: bytes.length,
      label: `upload of blob ${digest} to ${repoName(target)}`,
      open: () => bytes
    });
    return true;
  }
  /**
   * Streams a blob from `source` into `target` without holding it in memory: GET piped into a
   * monolithic PUT. The target verifies the digest on completion. A failed attempt restarts
   * with a new upload session and a new GET (see upload.ts).
   */
  async copyBlob(source, target, digest, size, uploadLocation) {
    await upload((r) => this.request(r), {
      target,
      digest,
      size,
      label: `copy of blob ${digest} from ${repoName(source)} to ${repoName(target)}`,
      open: () => this.openBlob(source, digest, size),
      session: uploadLocation
    });
  }
  /**
   * A blob's content as a stream, for a copy; the PUT it feeds holds the limiter's slot. A blob
   * longer or shorter than its descriptor says fails the copy, naming the blob.
   */
  async openBlob(repo, digest, size) {
    const res = await this.request({
      repo,
      method: "GET",
      url: `/v2/${repo.repository}/blobs/${digest}`,
      what: `blob ${digest}`,
      expect: [200],
      read: "stream",
      unlimited: true
    });
    const wrong = (length2) => new RegistryError(
      `blob ${digest} in ${repoName(repo)} on registry ${repo.registry} is ${length2} bytes, but the manifest that references it says ${size}`,
      { registry: repo.registry, repository: repo.repository, request: `GET blob ${digest}` }
    );
    const stream = res.stream;
    const length = header(res.headers, "content-length");
    if (length !== void 0 && Number(length) !== size) {
      drop(stream);
      throw wrong(length);
    }
    let seen = 0;
    const exact = new import_node_stream3.Transform({
      transform(chunk, _encoding, done) {
        seen += chunk.length;
        done(seen > size ? wrong(`more than ${size}`) : null, chunk);
      },
      flush(done) {
        done(seen === size ? null : wrong(String(seen)));
      }
    });
    return (0, import_node_stream3.pipeline)(stream, exact, () => void 0);
  }
};
function servedDigest(res, repo, what) {
  const served = header(res.headers, "docker-content-digest");
  if (served === void 0 || isDigest(served)) return served;
  throw new RegistryError(
    `registry ${repo.registry} sent the Docker-Content-Digest ${JSON.stringify(served)} for ${what} in ${repoName(repo)}, which is not a sha256 or sha512 digest`,
    { registry: repo.registry, repository: repo.repository }
  );
}
function referrersTag(digest) {
  return digest.replace(":", "-");
}
function documentFields(bytes) {
  try {
    const doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
    if (typeof doc !== "object" || doc === null) return {};
    const mediaType = typeof doc.mediaType === "string" && doc.mediaType ? doc.mediaType : void 0;
    return { mediaType, schemaVersion: doc.schemaVersion };
  } catch {
    return {};
  }
}
function indexEntries(bytes, what) {
  let doc;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new RegistryError(`${what}: the registry returned an index that is not valid JSON`);
  }
  if (!Array.isArray(doc.manifests))
    throw new RegistryError(`${what}: the registry returned an index without a manifests list`);
  const entries = doc.manifests;
  entries.forEach((d, i) => checkDescriptor(d, `${what}: entry ${i}`));
  return entries;
}

// src/referrers.ts
var COSIGN_SUFFIXES = ["sig", "att", "sbom"];
async function getIfPresent(store, repo, ref2) {
  try {
    return await store.get(repo, ref2);
  } catch (e) {
    if (isAbsent(e)) return void 0;
    throw e;
  }
}
async function findAttached(client, store, children, log) {
  const unique = [...new Map(children.map((c) => [c.descriptor.digest, c])).values()];
  const found = await allSettledOrThrow(
    unique.map(async (c) => {
      const subject = c.descriptor.digest;
      const [listed, cosign] = await Promise.all([
        client.listReferrers(c.source, subject),
        Promise.all(
          COSIGN_SUFFIXES.map(async (suffix) => {
            const tag = `${referrersTag(subject)}.${suffix}`;
            const raw = await getIfPresent(store, c.source, tag);
            return raw && { tag, raw };
          })
        )
      ]);
      const referrers = await Promise.all(
        listed.descriptors.filter((d) => {
          if (isImageManifestType(d.mediaType)) return true;
          log.warning(
            `referrer ${d.digest} of ${subject} is ${mediaTypeName(d.mediaType) ?? "of an unnamed type"}, which is not copied`
          );
          return false;
        }).map(async (d) => ({ descriptor: d, raw: await store.get(c.source, d.digest) }))
      );
      return { subject, source: c.source, referrers, cosign: cosign.filter((x) => x !== void 0) };
    })
  );
  return found.filter((a) => a.referrers.length || a.cosign.length);
}
async function copyAttached(client, copier, attached, log) {
  const target = copier.target;
  await allSettledOrThrow(
    attached.map(async (a) => {
      await Promise.all(
        a.referrers.map((r) => copier.copy(r.raw, a.source, `referrer of ${a.subject}`))
      );
      if (a.referrers.length)
        await listAsReferrers(
          client,
          target,
          a.subject,
          a.referrers.map((r) => r.descriptor)
        );
      for (const c of a.cosign) {
        if (sameRepository(a.source, target)) continue;
        const held = await client.headManifest(target, c.tag);
        if (held?.digest === c.raw.digest) continue;
        if (held) {
          log.warning(
            `${repoName(target)}:${c.tag} holds ${held.digest}, not the source's ${c.raw.digest}: left as it is`
          );
          continue;
        }
        await copier.copy(c.raw, a.source, `${c.tag} of ${a.subject}`);
        await client.putManifest(target, c.tag, c.raw);
      }
      log.info(
        `${repoName(target)}: ${a.referrers.length} referrer(s) and ${a.cosign.length} cosign tag(s) of ${a.subject} copied`
      );
    })
  );
}
var FALLBACK_ATTEMPTS = 3;
async function listAsReferrers(client, target, subject, descriptors, known) {
  for (let writes = 0; ; writes++) {
    const listed = writes === 0 && known || await client.listReferrers(target, subject);
    const missing = descriptors.filter(
      (r) => !listed.descriptors.some((d) => d.digest === r.digest)
    );
    if (listed.via !== "tag" || !missing.length) return;
    if (writes === FALLBACK_ATTEMPTS) break;
    const doc = listed.fallback ? JSON.parse(Buffer.from(listed.fallback.bytes).toString("utf8")) : { schemaVersion: 2, mediaType: OCI_INDEX };
    doc.manifests = [...listed.descriptors, ...missing];
    const bytes = Buffer.from(JSON.stringify(doc), "utf8");
    const mediaType = listed.fallback?.mediaType ?? OCI_INDEX;
    await client.putManifest(target, referrersTag(subject), {
      bytes,
      mediaType,
      digest: sha256(bytes)
    });
  }
  throw new RegistryError(
    `the referrers tag ${referrersTag(subject)} in ${repoName(target)} kept changing while this run added to it (${FALLBACK_ATTEMPTS} attempts); run again`,
    { registry: target.registry, repository: target.repository }
  );
}

// src/core/attestations.ts
var PREDICATE_TYPE_KEY = "in-toto.io/predicate-type";
function isProvenance(predicateType) {
  return !!predicateType && predicateType.startsWith("https://slsa.dev/provenance/");
}
function stripProvenance(manifest, mediaType, config) {
  const kept = manifest.layers.filter((l) => !isProvenance(l.annotations?.[PREDICATE_TYPE_KEY]));
  if (kept.length === manifest.layers.length) return "unchanged";
  if (kept.length === 0) return "empty";
  const removed = manifest.layers.filter((l) => !kept.includes(l)).map((l) => l.annotations?.[PREDICATE_TYPE_KEY] ?? l.digest);
  const cfg = JSON.parse(Buffer.from(config).toString("utf8"));
  const rootfs = cfg.rootfs;
  if (rootfs && Array.isArray(rootfs.diff_ids)) {
    const keptDigests = new Set(kept.map((l) => l.digest));
    rootfs.diff_ids = rootfs.diff_ids.filter((d) => keptDigests.has(d));
  }
  const configBytes = Buffer.from(JSON.stringify(cfg), "utf8");
  const configDigest = sha256(configBytes);
  const doc = {
    ...manifest,
    config: { ...manifest.config, digest: configDigest, size: configBytes.length },
    layers: kept
  };
  const bytes = Buffer.from(JSON.stringify(doc), "utf8");
  return {
    manifest: { bytes, mediaType, digest: sha256(bytes) },
    config: { digest: configDigest, bytes: configBytes, mediaType: manifest.config.mediaType },
    removed
  };
}
var ATTESTATION_ARTIFACT_TYPE = "application/vnd.docker.attestation.manifest.v1+json";
var EMPTY_CONFIG = {
  mediaType: "application/vnd.oci.empty.v1+json",
  digest: "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  size: 2,
  data: "e30="
};
var EMPTY_CONFIG_BYTES = Buffer.from("{}", "utf8");
function asReferrerManifest(manifest, subject) {
  const doc = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ATTESTATION_ARTIFACT_TYPE,
    config: EMPTY_CONFIG,
    layers: manifest.layers,
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }
  };
  if (manifest.annotations && Object.keys(manifest.annotations).length)
    doc.annotations = manifest.annotations;
  const bytes = Buffer.from(JSON.stringify(doc), "utf8");
  return { bytes, mediaType: OCI_MANIFEST, digest: sha256(bytes) };
}

// src/attach.ts
async function attachAsReferrers(store, children, decisions) {
  const isAttestation = (c) => c.kind === "attestation" && !c.referenceType;
  const images = new Map(
    children.filter((c) => c.kind === "image").map((c) => [c.descriptor.digest, c])
  );
  const attached = await allSettledOrThrow(
    children.filter(isAttestation).map(async (c) => {
      const image = images.get(c.subject ?? "");
      const raw = c.rewritten ?? await store.get(c.source, c.descriptor.digest);
      const where = `attestation ${c.descriptor.digest} of ${c.sourceInput}`;
      const parsed = parseManifest(raw, where);
      if (!image || parsed.kind !== "image")
        throw new ManifestError(`${where}: not an attestation manifest of an image in the index`);
      const m = asReferrerManifest(parsed.manifest, image.descriptor);
      decisions.push(
        `attach attestation ${c.descriptor.digest} to ${image.descriptor.digest} as the referrer ${m.digest}`
      );
      return {
        ...c,
        descriptor: {
          mediaType: OCI_MANIFEST,
          digest: m.digest,
          size: m.bytes.length,
          artifactType: ATTESTATION_ARTIFACT_TYPE,
          ...parsed.manifest.annotations ? { annotations: parsed.manifest.annotations } : {}
        },
        rewritten: m,
        newBlobs: [{ digest: EMPTY_CONFIG.digest, bytes: EMPTY_CONFIG_BYTES }]
      };
    })
  );
  return { children: children.filter((c) => !isAttestation(c)), attached };
}
async function attachMissing(client, copier, store, referrers, log) {
  const subjects = [...new Set(referrers.map((r) => r.subject ?? ""))];
  const listed = new Map(
    await allSettledOrThrow(
      subjects.map(async (s) => [s, await client.listReferrers(copier.target, s)])
    )
  );
  const known = new Set([...listed.values()].flatMap((l) => l.descriptors.map((d) => d.digest)));
  const missing = referrers.filter((r) => !known.has(r.descriptor.digest));
  if (!missing.length) return;
  await ensureChildren(copier, store, missing);
  await registerReferrers(client, copier.target, missing, log, listed);
}
async function registerReferrers(client, target, referrers, log, listed = /* @__PURE__ */ new Map()) {
  const bySubject = /* @__PURE__ */ new Map();
  for (const r of referrers)
    bySubject.set(r.subject ?? "", [...bySubject.get(r.subject ?? "") ?? [], r]);
  await allSettledOrThrow(
    [...bySubject].map(async ([subject, list]) => {
      await listAsReferrers(
        client,
        target,
        subject,
        list.map((r) => r.descriptor),
        listed.get(subject)
      );
      log.info(
        `${repoName(target)}: ${list.length} attestation(s) attached to ${subject} as referrers`
      );
    })
  );
}

// src/apply.ts
var FINAL = { final: true };
var CopierPool = class {
  constructor(client, store) {
    this.client = client;
    this.store = store;
  }
  client;
  store;
  copiers = /* @__PURE__ */ new Map();
  /** The copiers of repositories that a tag will be pushed to, for the log. */
  pushing = /* @__PURE__ */ new Set();
  for(target) {
    const key = repoName(target);
    let c = this.copiers.get(key);
    if (!c) {
      c = new TargetCopier(this.client, target, (d) => this.store.knownConfig(d));
      this.copiers.set(key, c);
    }
    return c;
  }
  /** What was copied into each repository that a tag will be pushed to. */
  describe() {
    return [...this.pushing].map((c) => c.describe());
  }
};
async function copyChildren(pool, p, log) {
  const { client, store } = pool;
  const { opts, targets, plan } = p;
  const pushTargets = reposToPush(targets, opts.tags, p.tags);
  const { children, attached: referrers = [] } = plan;
  const copiers = targets.map((t) => pool.for(t));
  const pushing = copiers.filter((c) => pushTargets.some((t) => repoName(t) === repoName(c.target)));
  for (const c of pushing) pool.pushing.add(c);
  const copies = allSettledOrThrow(
    copiers.map(async (c) => {
      if (pushing.includes(c)) {
        await ensureChildren(c, store, [...children, ...referrers]);
        await registerReferrers(client, c.target, referrers, log);
      } else if (referrers.length) {
        await attachMissing(client, c, store, referrers, log);
      }
    })
  );
  const [copied, found] = await Promise.allSettled([
    copies,
    opts.copyReferrers ? findAttached(client, store, children, log) : []
  ]);
  if (copied.status === "rejected") throw copied.reason;
  if (found.status === "rejected") throw found.reason;
  const attached = found.value;
  if (attached.length)
    await allSettledOrThrow(copiers.map((c) => copyAttached(client, c, attached, log)));
  if (pushTargets.length === 0) log.info("every tag is already current: nothing to copy");
}
async function pushAll(client, images) {
  const state = { failed: false };
  const settled = await Promise.allSettled(
    images.map(({ p, log }) => pushTags(client, p, state, log))
  );
  if (settled.some((x) => x.status === "rejected"))
    await Promise.all(images.map(({ p, log }) => rollBack(client, p, log)));
  return settled;
}
async function pushTags(client, p, state, log) {
  await allSettledOrThrow(
    p.targets.map(async (repo) => {
      for (const [i, t] of p.opts.tags.entries()) {
        if (repoName(t) !== repoName(repo)) continue;
        if (state.failed) return;
        try {
          await pushTag(client, p.opts, t, p.plan, p.tags[i], log);
        } catch (e) {
          state.failed = true;
          throw e;
        }
      }
    })
  );
}
async function pushTag(client, opts, t, plan, r, log) {
  const { index } = plan;
  if (r.outcome === "unchanged") {
    log.info(`${r.ref} already points at ${index.digest}: not pushed again`);
    return;
  }
  try {
    await client.putManifest(t, t.tag ?? "latest", index, FINAL);
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    if (isContentRefused(e)) throw indexRefused(e, r, plan, !!opts.preserveDigest);
    if (!isTagConflict(e) || !r.previous) throw e;
    if ((isDenied(e) || isForbiddenAsInvalid(e)) && opts.onConflict !== "fail")
      await client.putManifest(t, index.digest, index, FINAL);
    handleConflict(opts, t, r, e, log);
    r.outcome = "skipped";
    return;
  }
  r.moved = true;
  log.info(`pushed ${r.ref} -> ${index.digest}${r.previous ? ` (was ${r.previous})` : ""}`);
}
function handleConflict(opts, t, r, e, log) {
  const message = `tag ${r.ref} holds ${r.previous} and the registry refused to overwrite it (HTTP ${e.status}${e.code ? ` ${e.code}` : ""}): ` + conflictReason(e, repoName(t));
  if (opts.onConflict === "skip") log.info(`skipped: ${message}`);
  else if (opts.onConflict === "warn") log.warning(message);
  else {
    throw new RegistryError(`${message} (set on-conflict: skip or warn to go on)`, detailsOf(e));
  }
}
function indexRefused(e, r, plan, preserved) {
  const { index, children } = plan;
  const advice = preserved ? "preserve-digest pushes the index as it is: promote without preserve-digest to let the index change" : indexRefusalAdvice(index, children);
  const what = preserved ? "promoted unchanged" : `${children.length} entries`;
  return new RegistryError(
    `registry ${e.registry ?? "?"} refused the index ${index.digest} (${index.mediaType}, ${what}) for ${r.ref}: ${e.message}${advice ? `. ${advice}` : ""}`,
    detailsOf(e)
  );
}
function conflictReason(e, repo) {
  if (e.status === 412) return `the tag is immutable (a tag immutability rule of ${repo})`;
  if (e.code === "TAG_INVALID") return `the tag is immutable (${repo} has immutable tags)`;
  return `the credentials lack overwrite (delete) permission on ${repo}, or the tag is immutable`;
}
async function rollBack(client, p, log) {
  const digest = p.plan.index.digest;
  await Promise.all(
    p.opts.tags.map(async (t, i) => {
      const r = p.tags[i];
      if (r.outcome !== "pushed" || !r.moved) return;
      if (!r.previous) {
        log.warning(
          `${r.ref} did not exist before this run and now holds the new index: delete it by hand if needed`
        );
        return;
      }
      try {
        const now = await client.headManifest(t, t.tag ?? "latest", FINAL);
        if (now?.digest !== digest) {
          log.warning(
            `${r.ref} now holds ${now?.digest ?? "nothing"}, not this run's index: left as it is`
          );
          return;
        }
        const previous = await client.getManifest(t, r.previous, FINAL);
        await client.putManifest(t, t.tag ?? "latest", previous, FINAL);
        log.warning(`${r.ref} put back on ${r.previous} because another tag could not be pushed`);
      } catch (e) {
        log.warning(`${r.ref} could not be put back on ${r.previous}: ${e.message}`);
      }
    })
  );
}

// src/manifest-store.ts
var ManifestStore = class {
  constructor(client) {
    this.client = client;
  }
  client;
  manifests = new OnceMap();
  configs = new OnceMap();
  /** Whether children found in an index from `repo` will be copied, so are worth fetching early. */
  willCopyFrom = () => false;
  /**
   * Starts fetching a child manifest that copying will need, while the other sources are still
   * resolving: this takes a round trip off the critical path. Errors surface when it is awaited.
   */
  prefetch(repo, digest) {
    if (this.willCopyFrom(repo)) this.get(repo, digest).catch(() => void 0);
  }
  get(repo, reference) {
    if (reference.includes(":")) {
      return this.manifests.get(reference, () => this.client.getManifest(repo, reference));
    }
    return this.manifests.get(`${repoName(repo)}:${reference}`, async () => {
      const m = await this.client.getManifest(repo, reference);
      this.manifests.seed(m.digest, m);
      return m;
    });
  }
  /** A manifest already fetched (or being fetched) by digest, without fetching it. */
  fetched(digest) {
    return this.manifests.peek(digest);
  }
  /** A config already fetched (or being fetched) while resolving, for copies to reuse. */
  knownConfig(digest) {
    return this.configs.peek(digest);
  }
  config(repo, digest) {
    return this.configs.get(digest, () => this.client.getBlob(repo, digest));
  }
};

// src/tag-state.ts
function currentDigests(client, tags, appendBase, log) {
  const all = Promise.all(
    tags.map((t, i) => {
      if (i === 0 && appendBase) return appendBase.then((m) => m?.digest).catch(() => void 0);
      return client.headManifest(t, t.tag ?? "latest").then(
        (head) => head?.digest,
        (e) => {
          if (!answered(e)) throw e;
          log.debug(
            `HEAD ${formatReference(t)} failed (${e.message}); it will be pushed`
          );
          return void 0;
        }
      );
    })
  );
  all.catch(() => void 0);
  return all;
}
function answered(e) {
  if (!(e instanceof RegistryError) || e instanceof RetriesExhaustedError) return false;
  return e.status !== void 0 && e.status >= 400 && e.status < 500;
}
function logDryRun(tags, digest, log) {
  for (const t of tags) {
    log.info(
      t.outcome === "unchanged" ? `${t.ref} already points at ${digest}` : `dry-run: would push ${t.ref} (now ${t.previous ?? "absent"})`
    );
  }
}

// src/provenance.ts
async function stripProvenanceFrom(store, children, decisions) {
  const rewritten = await allSettledOrThrow(
    children.map(async (c) => {
      if (c.kind !== "attestation" || c.referenceType) return c;
      const raw = await store.get(c.source, c.descriptor.digest);
      const parsed = parseManifest(raw, `attestation ${raw.digest} of ${c.sourceInput}`);
      if (parsed.kind !== "image") return c;
      if (!parsed.manifest.layers.some((l) => isProvenance(l.annotations?.[PREDICATE_TYPE_KEY]))) {
        decisions.push(
          `keep attestation ${raw.digest} of ${c.subject ?? "?"}: it holds no provenance`
        );
        return c;
      }
      const config = await store.config(c.source, parsed.manifest.config.digest);
      const r = stripProvenance(parsed.manifest, parsed.mediaType, config);
      if (r === "unchanged") return c;
      if (r === "empty") {
        decisions.push(
          `drop attestation ${raw.digest} of ${c.subject ?? "?"}: it held only provenance`
        );
        return void 0;
      }
      decisions.push(
        `rewrite attestation ${raw.digest} of ${c.subject ?? "?"} without ${r.removed.join(", ")} -> ${r.manifest.digest}`
      );
      return {
        ...c,
        descriptor: { ...c.descriptor, digest: r.manifest.digest, size: r.manifest.bytes.length },
        rewritten: r.manifest,
        newBlobs: [{ digest: r.config.digest, bytes: r.config.bytes }]
      };
    })
  );
  return rewritten.filter((c) => c !== void 0);
}

// src/resolve.ts
async function resolveSources(store, sources) {
  const lists = await allSettledOrThrow(
    sources.map(async (s) => {
      const found = await resolveSource(store, s);
      if (!found.some((c) => c.kind === "image")) throw noImage(s, found);
      return found;
    })
  );
  return lists.flat();
}
function noImage(spec, found) {
  const what = found.length ? `only ${found.length} entr${found.length === 1 ? "y" : "ies"} that ${found.length === 1 ? "is" : "are"} not an image (attestations or other unknown/unknown entries)` : "no entries (an empty index)";
  return new ManifestError(
    `source ${spec.input}: it holds no image to merge, ${what}; pass the digests of the per-platform images, or check that the build that pushed it ran`
  );
}
async function resolveSource(store, spec) {
  const where = `source ${spec.input}`;
  try {
    return await resolveOne(store, spec, where);
  } catch (e) {
    const hint = spec.lookedUpIn === "first tag" && isNotFound(e) ? ` (a bare digest is looked up in the first tag's repository, ${repoName(spec.ref)}: set source-repository to the repository the images were pushed to)` : "";
    throw aboutSource(where, e, hint);
  }
}
function aboutSource(where, e, hint) {
  if (!(e instanceof Error) || e.message.startsWith("source ") && !hint) return e;
  const proto = Object.getPrototypeOf(e);
  const copy = Object.create(proto, Object.getOwnPropertyDescriptors(e));
  const message = e.message.startsWith("source ") ? e.message : `${where}: ${e.message}`;
  copy.message = message + hint;
  return copy;
}
async function resolveOne(store, spec, where) {
  const { ref: ref2 } = spec;
  const reference = ref2.digest ?? ref2.tag ?? "latest";
  const raw = await store.get(ref2, reference);
  const full = formatReference(ref2);
  const parsed = parseManifest(raw, full === spec.input ? where : `${where} (${full})`);
  if (parsed.kind === "image") {
    const descriptor = {
      mediaType: parsed.mediaType,
      digest: raw.digest,
      size: raw.bytes.length
    };
    return [await imageChild(store, spec, descriptor, parsed.manifest, where)];
  }
  return walkIndex(store, spec, raw, where, { visited: /* @__PURE__ */ new Set(), entries: 0 }, 1);
}
async function imageChild(store, spec, descriptor, manifest, where) {
  const config = await store.config(spec.ref, manifest.config.digest);
  const platform = platformFromConfig(config, `${where} (${descriptor.digest})`);
  return {
    kind: "image",
    descriptor: { ...descriptor, platform },
    source: spec.ref,
    sourceInput: spec.input
  };
}
var UNKNOWN_PLATFORM = { os: "unknown", architecture: "unknown" };
var MAX_DEPTH = 8;
var MAX_ENTRIES = 4096;
async function walkIndex(store, spec, raw, where, walk, depth) {
  if (walk.visited.has(raw.digest)) return [];
  walk.visited.add(raw.digest);
  if (depth > MAX_DEPTH) {
    throw new ManifestError(
      `${where}: indexes nested more than ${MAX_DEPTH} deep, at ${raw.digest}`
    );
  }
  const parsed = parseManifest(raw, where);
  if (parsed.kind !== "index")
    throw new ManifestError(`${where}: expected an index at ${raw.digest}`);
  walk.entries += parsed.index.manifests.length;
  if (walk.entries > MAX_ENTRIES) {
    throw new ManifestError(`${where}: its indexes hold more than ${MAX_ENTRIES} entries`);
  }
  const entries = unwrapIndex(parsed.index, `${where} (index ${raw.digest})`);
  const lists = await allSettledOrThrow(
    entries.map(async ({ role, descriptor }) => {
      if (role === "image" || role === "attestation") {
        if (otherFamily(parsed.mediaType, descriptor.mediaType))
          store.get(spec.ref, descriptor.digest).catch(() => void 0);
        else store.prefetch(spec.ref, descriptor.digest);
      }
      switch (role) {
        case "image":
          return [{ kind: "image", descriptor, source: spec.ref, sourceInput: spec.input }];
        case "attestation":
          return [
            {
              kind: "attestation",
              descriptor,
              source: spec.ref,
              sourceInput: spec.input,
              subject: attestationSubject(descriptor)
            }
          ];
        case "nested-index":
          return walkIndex(
            store,
            spec,
            await store.get(spec.ref, descriptor.digest),
            where,
            walk,
            depth + 1
          );
        case "companion": {
          const referenceType = referenceTypeOf(descriptor);
          const subject = attestationSubject(descriptor) ?? await manifestSubject(store, spec, descriptor, where);
          return [companion(spec, descriptor, subject, referenceType)];
        }
        case "unplatformed":
          return [await unplatformed(store, spec, descriptor, where)];
      }
    })
  );
  return lists.flat();
}
function companion(spec, descriptor, subject, referenceType) {
  return {
    kind: "attestation",
    // Every entry of a list or index carries a platform (Quay refuses one without:
    // moby/buildkit#1550): one that names none is unknown/unknown, as BuildKit writes it.
    descriptor: { ...descriptor, platform: descriptor.platform ?? UNKNOWN_PLATFORM },
    source: spec.ref,
    sourceInput: spec.input,
    subject,
    referenceType: referenceType ?? mediaTypeName(descriptor.artifactType) ?? "unplatformed"
  };
}
async function manifestSubject(store, spec, descriptor, where) {
  const p = parseManifest(
    await store.get(spec.ref, descriptor.digest),
    `${where} (${descriptor.digest})`
  );
  return p.kind === "image" ? p.manifest.subject?.digest : void 0;
}
async function unplatformed(store, spec, descriptor, where) {
  const at = `${where} (${descriptor.digest})`;
  const p = parseManifest(await store.get(spec.ref, descriptor.digest), at);
  if (p.kind !== "image")
    throw new ManifestError(`${where}: ${descriptor.digest} is not an image manifest`);
  const subject = p.manifest.subject?.digest;
  const type = mediaTypeName(p.manifest.artifactType) ?? mediaTypeName(descriptor.artifactType);
  if (subject) return companion(spec, descriptor, subject, type);
  const config = await store.config(spec.ref, p.manifest.config.digest);
  const platform = configPlatform(config, at);
  if (platform && platform !== "not json") {
    return {
      kind: "image",
      descriptor: { ...descriptor, platform },
      source: spec.ref,
      sourceInput: spec.input
    };
  }
  return companion(spec, descriptor, void 0, type);
}
function otherFamily(indexType, entryType) {
  const docker = (t) => t.startsWith("application/vnd.docker.");
  return docker(indexType) !== docker(entryType);
}

// src/result.ts
function mergeResult(r) {
  const { index, children } = r;
  const images = children.filter((c) => c.kind === "image");
  const platforms = images.map((c) => c.descriptor.platform);
  return {
    index,
    children,
    decisions: r.decisions,
    images: r.targets.map((t) => `${repoName(t)}@${index.digest}`),
    tags: r.tags,
    platforms: platformNames(platforms),
    platformDigests: Object.fromEntries(
      images.map((c, i) => [formatPlatformFull(platforms[i]), c.descriptor.digest])
    ),
    attestations: describeAttestations(r.all, [...children, ...r.attached ?? []], r.mode)
  };
}
function describeAttestations(all, kept, mode) {
  const out = {};
  for (const img of kept.filter((c) => c.kind === "image")) {
    const d = img.descriptor.digest;
    const attests = (c) => c.kind === "attestation" && !c.referenceType && c.subject === d;
    const had = all.filter(attests).length;
    const has = kept.filter(attests).length;
    out[d] = had === 0 ? "none" : mode === "strip" ? `stripped (${had})` : mode === "strip-provenance" ? `provenance stripped (${has} of ${had} kept)` : mode === "referrers" ? `attached as referrers (${has})` : mode === "referrers-strip-provenance" ? `provenance stripped, attached as referrers (${has} of ${had})` : `kept (${has})`;
  }
  return out;
}

// src/prepare.ts
async function prepareMerge(store, opts, log) {
  const targets = uniqueRepos(opts.tags);
  const appendBase = opts.append ? readTag(store, opts.tags[0]) : void 0;
  const current = currentDigests(store.client, opts.tags, appendBase, log);
  const plan = await resolveAndPlan(store, opts, targets, appendBase, log);
  const tags = planTags(opts.tags, await current, plan.index.digest, opts.dryRun);
  return {
    opts,
    targets,
    plan,
    tags,
    result: () => mergeResult({ ...plan, mode: opts.attestations, targets, tags })
  };
}
function copiedFrom(opts, targets) {
  return (repo) => !opts.dryRun && (stripsProvenance(opts.attestations) || asReferrers(opts.attestations) || targets.some((t) => !sameRepository(t, repo)));
}
function readTag(store, tag) {
  return store.get(tag, tag.tag ?? "latest").catch((e) => {
    if (isAbsent(e)) return void 0;
    if (e instanceof ManifestError)
      throw new ManifestError(`append: ${formatReference(tag)}: ${e.message}`, { cause: e });
    throw e;
  });
}
async function resolveAndPlan(store, opts, targets, appendBase, log) {
  const [fromSources, existing] = await Promise.all([
    resolveSources(store, opts.sources),
    appendBase ? resolveExisting(store, opts.tags[0], appendBase, log) : []
  ]);
  const all = [...existing, ...fromSources];
  for (const c of all) log.info(describeEntry(c));
  const placement = asReferrers(opts.attestations) ? "keep" : opts.attestations;
  const entries = selectEntries(
    all,
    { ...opts, attestations: placement },
    opts.sources.map((s) => s.input)
  );
  let children = entries.children;
  if (stripsProvenance(opts.attestations)) {
    children = await stripProvenanceFrom(store, children, entries.decisions);
  }
  const copied = copiedFrom(opts, targets);
  const fetched = await fetchedManifests(store, children, copied);
  children = describedAsFetched(children, fetched, entries.decisions);
  let attached = [];
  if (asReferrers(opts.attestations))
    ({ children, attached } = await attachAsReferrers(store, children, entries.decisions));
  const annotations = appendBase ? keptAnnotations(await appendBase, opts, entries.decisions) : opts.annotations;
  entries.decisions.push(
    ...unmatchedAnnotations(children, opts.platformDescriptorAnnotations ?? [])
  );
  for (const d of entries.decisions) log.info(d);
  const { index, children: indexed } = planIndex(children, { ...opts, annotations });
  log.info(`index ${index.digest} (${index.mediaType}, ${indexed.length} entries)`);
  return { all, children: indexed, attached, decisions: entries.decisions, index };
}
async function fetchedManifests(store, children, copied) {
  const out = /* @__PURE__ */ new Map();
  await Promise.all(
    children.map(async (c) => {
      if (c.rewritten) return;
      const digest = c.descriptor.digest;
      const raw = copied(c.source) ? store.get(c.source, digest) : store.fetched(digest);
      if (raw) out.set(digest, await raw);
    })
  );
  return out;
}
function keptAnnotations(held, opts, decisions) {
  const parsed = held && parseManifest(held, `${formatReference(opts.tags[0])} (current)`);
  const old = parsed?.kind === "index" ? parsed.index.annotations ?? {} : {};
  const keys = Object.keys(old).filter((k) => typeof old[k] === "string");
  if (!keys.length) return opts.annotations;
  if (opts.format === "docker") {
    decisions.push(
      `append: drop the index annotations the tag holds (${keys.join(", ")}): format docker makes a Docker list, which cannot carry them`
    );
    return opts.annotations;
  }
  const replaced = keys.filter((k) => Object.hasOwn(opts.annotations, k));
  const kept = keys.filter((k) => !Object.hasOwn(opts.annotations, k));
  if (kept.length)
    decisions.push(`append: keep the index annotations the tag holds: ${kept.join(", ")}`);
  if (replaced.length)
    decisions.push(
      `append: replace the index annotations ${replaced.join(", ")} with the annotations input`
    );
  return { ...Object.fromEntries(kept.map((k) => [k, old[k]])), ...opts.annotations };
}
async function resolveExisting(store, first, appendBase, log) {
  const m = await appendBase;
  if (!m) {
    log.info(`append: ${formatReference(first)} does not exist yet; merging the sources alone`);
    return [];
  }
  const spec = { input: `${formatReference(first)} (current)`, ref: { ...first, digest: m.digest } };
  return (await resolveSource(store, spec)).map((c) => ({ ...c, existing: true }));
}

// src/promote.ts
async function preparePromotion(store, opts, log) {
  const spec = opts.sources[0];
  const targets = uniqueRepos(opts.tags);
  const current = currentDigests(store.client, opts.tags, void 0, log);
  const { index, children, nested } = await resolveIndex(store, opts, spec, log);
  const json = Buffer.from(index.bytes).toString("utf8");
  const tags = planTags(opts.tags, await current, index.digest, opts.dryRun);
  const self = {
    kind: "image",
    descriptor: { mediaType: index.mediaType, digest: index.digest, size: index.bytes.length },
    source: spec.ref,
    sourceInput: spec.input
  };
  return {
    opts,
    targets,
    plan: { children: [...children, ...nested, self], index: { ...index, json } },
    tags,
    result: () => mergeResult({
      index: { ...index, json },
      children,
      all: children,
      decisions: [`preserve-digest: ${index.digest} promoted unchanged`],
      mode: "keep",
      targets,
      tags
    })
  };
}
function refuseChanges(opts) {
  const { sources } = opts;
  if (sources.length !== 1) {
    throw new MergeInputError(
      `input preserve-digest: the sources must be exactly one index to promote, but ${sources.length} are given (sources: ${sources.map((s) => s.input).join(", ")}); without preserve-digest they are merged into a new index`
    );
  }
  const problems = [];
  if (opts.platforms)
    problems.push(
      `input platforms (${opts.platforms.map(formatPlatformFull).join(", ")}) would leave entries out`
    );
  if (opts.attestations !== "keep")
    problems.push(
      `input attestations: ${opts.attestations} would take out or rewrite its attestation manifests`
    );
  const index = Object.keys(opts.annotations);
  const descriptor = Object.keys(opts.descriptorAnnotations ?? {});
  const byPlatform = (opts.platformDescriptorAnnotations ?? []).map(
    (a) => `manifest-descriptor[${a.platforms.map(formatPlatformFull).join(",")}]:${a.key}`
  );
  if (index.length)
    problems.push(
      `input annotations (or github-annotations) would set the index annotation(s) ${index.join(", ")}`
    );
  if (descriptor.length || byPlatform.length)
    problems.push(
      `input annotations would set the descriptor annotation(s) ${[...descriptor.map((k) => `manifest-descriptor:${k}`), ...byPlatform].join(", ")}`
    );
  if (opts.append)
    problems.push(`input append would merge it with what ${formatReference(opts.tags[0])} holds`);
  if (problems.length)
    throw new MergeInputError(
      `input preserve-digest: the index of ${sources[0].input} is promoted unchanged, but ${problems.join("; ")}. Remove ${problems.length > 1 ? "these inputs" : "that input"}, or drop preserve-digest to merge into a new index`
    );
}
async function resolveIndex(store, opts, spec, log) {
  const children = await resolveSources(store, [spec]);
  const index = await store.get(spec.ref, spec.ref.digest ?? spec.ref.tag ?? "latest");
  const { mediaType } = parseManifest(index, `source ${spec.input}`);
  if (!isIndexType(mediaType)) {
    throw new MergeInputError(
      `input preserve-digest: source ${spec.input} is an image manifest (${mediaType}), not an index; preserve-digest promotes an index as it is (leave it out to make an index of the image)`
    );
  }
  const wanted = opts.format === "oci" ? OCI_INDEX : opts.format === "docker" ? DOCKER_LIST : "";
  if (wanted && wanted !== mediaType) {
    throw new MergeInputError(
      `input preserve-digest: source ${spec.input} is ${mediaType}, but input format: ${opts.format} asks for ${wanted}, which would be another digest; set format: auto`
    );
  }
  for (const c of children) log.info(describeEntry(c));
  const images = children.filter((c) => c.kind === "image");
  if (opts.requirePlatforms) {
    const problem = checkRequiredPlatforms(
      images,
      opts.requirePlatforms,
      !!opts.allowExtraPlatforms,
      [spec.input]
    );
    if (problem) throw new MergeInputError(problem);
  }
  const nested = await nestedIndexes(store, spec, index, /* @__PURE__ */ new Set([index.digest]));
  log.info(
    `index ${index.digest} (${mediaType}, ${children.length} entries${nested.length ? ` in ${nested.length + 1} indexes` : ""}) promoted unchanged (preserve-digest): every tag gets its bytes as they are`
  );
  return { index: { ...index, mediaType }, children, nested };
}
async function nestedIndexes(store, spec, raw, seen) {
  const parsed = parseManifest(raw, `source ${spec.input} (index ${raw.digest})`);
  if (parsed.kind !== "index") return [];
  const out = [];
  for (const descriptor of parsed.index.manifests) {
    if (!isIndexType(descriptor.mediaType) || seen.has(descriptor.digest)) continue;
    seen.add(descriptor.digest);
    const inner = await store.get(spec.ref, descriptor.digest);
    out.push(...await nestedIndexes(store, spec, inner, seen));
    out.push({ kind: "image", descriptor, source: spec.ref, sourceInput: spec.input });
  }
  return out;
}

// src/merge.ts
async function mergeAll(client, images, log) {
  const labels = images.map((o, i) => imageLabel(o, i, images.length));
  const logs = images.map((_, i) => labels[i] ? prefixed(log, labels[i]) : log);
  checkImages(images);
  for (const o of images) {
    for (const t of uniqueRepos(o.tags)) client.declare(t, o.dryRun ? ["pull"] : ["pull", "push"]);
    for (const s of uniqueRepos(o.sources.map((s2) => s2.ref))) client.declare(s, ["pull"]);
  }
  const store = new ManifestStore(client);
  const prefetch = images.map(
    (o) => (
      // Not with a platforms filter, which may drop what would be fetched early.
      o.platforms ? () => false : copiedFrom(o, uniqueRepos(o.tags))
    )
  );
  store.willCopyFrom = (repo) => prefetch.some((f) => f(repo));
  const prepared = await log.group(
    phase("Resolve sources", images.length),
    async () => settle(
      await Promise.allSettled(
        images.map(
          (o, i) => (o.preserveDigest ? preparePromotion : prepareMerge)(store, o, logs[i])
        )
      ),
      labels
    )
  );
  if (images.some((o) => o.dryRun)) {
    for (const [i, p] of prepared.entries()) logDryRun(p.tags, p.plan.index.digest, logs[i]);
    return prepared.map((p) => p.result());
  }
  const pool = new CopierPool(client, store);
  await log.group(phase("Copy children into target repositories", images.length), async () => {
    settle(await Promise.allSettled(prepared.map((p, i) => copyChildren(pool, p, logs[i]))), labels);
    for (const line of pool.describe()) log.info(line);
  });
  const deadline = Math.min(...images.map((o) => o.deadline ?? Infinity));
  if (Date.now() > deadline) {
    throw new RegistryError(
      "the time budget (input timeout) ran out before the tags were pushed: no tag moved"
    );
  }
  await log.group(
    phase("Push tags", images.length),
    async () => settle(
      await pushAll(
        client,
        prepared.map((p, i) => ({ p, log: logs[i] }))
      ),
      labels
    )
  );
  return prepared.map((p) => p.result());
}
function checkImages(images) {
  settle(
    images.map((o) => () => o.preserveDigest ? refuseChanges(o) : void 0).map(run),
    images.map((o, i) => imageLabel(o, i, images.length))
  );
}
function imageLabel(o, i, count) {
  if (count === 1) return void 0;
  return `image ${i + 1} (${formatReference(o.tags[0])})`;
}
function phase(name, count) {
  return count === 1 ? name : `${name} (${count} images)`;
}
function prefixed(log, label) {
  return {
    info: (m) => log.info(`${label}: ${m}`),
    warning: (m) => log.warning(`${label}: ${m}`),
    debug: (m) => log.debug(`${label}: ${m}`),
    // The run's phases are the groups; an image's own groups would interleave with the others'.
    group: (name, fn) => {
      log.info(`${label}: ${name}`);
      return fn();
    }
  };
}
function run(f) {
  try {
    return { status: "fulfilled", value: f() };
  } catch (reason) {
    return { status: "rejected", reason };
  }
}
function settle(results, labels) {
  const failed = results.map((r, i) => ({ r, label: labels[i] })).filter(
    (x) => x.r.status === "rejected"
  );
  if (!failed.length) return results.map((r) => r.value);
  const first = failed[0].r.reason;
  if (!labels.some(Boolean) || !(first instanceof Error)) throw first;
  first.message = failed.map(
    ({ r, label }) => `${label}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`
  ).join("; ");
  throw first;
}

// src/outputs.ts
function outputsOf(r, dryRun) {
  const written = r.tags.filter(
    (t) => t.outcome !== "skipped" && (dryRun || t.outcome !== "dry-run")
  );
  return {
    digest: r.index.digest,
    images: r.images.join("\n"),
    tags: written.map((t) => t.ref).join("\n"),
    manifest: r.index.json,
    "media-type": r.index.mediaType,
    platforms: r.platforms.join(","),
    "platform-digests": JSON.stringify(r.platformDigests)
  };
}
function describeResult(r, dryRun) {
  const by = (o) => r.tags.filter((t) => t.outcome === o).map((t) => t.ref);
  const written = by(dryRun ? "dry-run" : "pushed");
  const parts = [`${r.index.digest} (${r.platforms.join(", ")})`];
  if (written.length)
    parts.push(`${dryRun ? "would be pushed" : "pushed"} to ${written.join(", ")}`);
  if (by("unchanged").length) parts.push(`already current: ${by("unchanged").join(", ")}`);
  if (by("skipped").length) parts.push(`not overwritten (on-conflict): ${by("skipped").join(", ")}`);
  return (dryRun ? "Dry run: " : "") + parts.join("; ");
}
function failureMessage(e) {
  const message = e instanceof Error ? e.message : String(e);
  return e instanceof UserError ? message : `merge failed: ${message}`;
}

// src/release-plan.ts
var import_node_fs2 = require("node:fs");
var PER_IMAGE_ONLY = ["tags", "sources", "digests-dir", "metadata-json"];
async function readSetup(get, onSecret, env, github, plan = planInput(get("plan"))) {
  if (!plan) {
    const inputs = parseInputs(get, onSecret, env, github);
    return { images: [inputs], run: inputs, fromPlan: false };
  }
  const around = PER_IMAGE_ONLY.filter((name) => get(name).trim() !== "");
  if (around.length) {
    throw new InputError(
      `input plan: ${around.join(", ")} must be empty when a plan is given (each image of the plan has its own)`
    );
  }
  return parsePlan(plan.text, plan.name, get, onSecret, env, github);
}
function planInput(value) {
  const v = value.trim();
  if (!v) return void 0;
  if (v.includes("\n") || v.startsWith("{")) return { name: "input plan", text: v };
  return { name: `plan ${v}`, text: readPlanFile(v, "input plan") };
}
function readPlanFile(path, what) {
  try {
    return (0, import_node_fs2.readFileSync)(path, "utf8");
  } catch (e) {
    const why = e.code === "ENOENT" ? "no such file" : e.message;
    throw new InputError(`${what}: cannot read the plan "${path}": ${why}`, { cause: e });
  }
}
async function parsePlan(text, name, around, onSecret, env, github) {
  const doc = await parseDocument(text, name);
  if (!isMapping(doc)) throw new InputError(`${name}: expected a mapping with an images list`);
  const unknown = Object.keys(doc).filter((k) => k !== "images" && k !== "defaults");
  if (unknown.length) {
    throw new InputError(
      `${name}: unknown key ${unknown.map((k) => `"${k}"`).join(", ")} (a plan has defaults and images)`
    );
  }
  const defaults = doc.defaults === void 0 ? {} : values(doc.defaults, `${name}: defaults`);
  const misplaced = Object.keys(defaults).filter((k) => PER_IMAGE_ONLY.includes(k));
  if (misplaced.length) {
    throw new InputError(
      `${name}: defaults: ${misplaced.join(", ")} belong to each image, not to defaults`
    );
  }
  if (!Array.isArray(doc.images) || doc.images.length === 0) {
    throw new InputError(`${name}: images must be a list of one or more images`);
  }
  const planEnv = {
    ...env,
    DOCKER_METADATA_OUTPUT_JSON: void 0,
    DOCKER_METADATA_OUTPUT_ANNOTATIONS: void 0
  };
  const runGet = (k) => defaults[k] ?? around(k);
  const images = doc.images.map((entry, i) => {
    const where = `${name}: image ${i + 1}`;
    const own = values(entry, where);
    const runLevel = Object.keys(own).filter((k) => RUN_INPUTS.includes(k));
    if (runLevel.length) {
      throw new InputError(
        `${where}: ${runLevel.join(", ")} ${runLevel.length > 1 ? "apply" : "applies"} to the whole run: set ${runLevel.length > 1 ? "them" : "it"} under defaults`
      );
    }
    if (!own.tags?.trim() && !own["metadata-json"]?.trim())
      throw new InputError(`${where}: no tags (each image needs its own tags)`);
    try {
      return parseImageInputs((k) => own[k] ?? runGet(k), planEnv, github);
    } catch (e) {
      if (e instanceof InputError) throw new InputError(`${where}: ${e.message}`, { cause: e });
      throw e;
    }
  });
  checkTagsOnce(images, name);
  let run2;
  try {
    run2 = parseRunInputs(
      runGet,
      images.flatMap((i) => i.tags),
      onSecret
    );
  } catch (e) {
    const set = Object.keys(defaults).filter((k) => RUN_INPUTS.includes(k));
    const fromPlan = e instanceof InputError && set.some((k) => new RegExp(`\\b${k}\\b`).test(e.message));
    if (fromPlan) throw new InputError(`${name}: defaults: ${e.message}`, { cause: e });
    throw e;
  }
  if (/^(true|True|TRUE)$/.test(around("dry-run").trim())) run2.dryRun = true;
  return { images, run: run2, fromPlan: true };
}
async function parseDocument(text, name) {
  const mod = await Promise.resolve().then(() => __toESM(require("./chunks/yaml.js"), 1));
  const { LineCounter, parseDocument: parseDocument2 } = mod.default ?? mod;
  const lines = new LineCounter();
  const doc = parseDocument2(text, { uniqueKeys: true, schema: "failsafe", lineCounter: lines });
  const error = doc.errors[0];
  if (error) {
    const at = lines.linePos(error.pos[0]);
    throw new InputError(
      `${name}: not valid YAML or JSON (line ${at.line}, column ${at.col}): ${error.message.split("\n")[0]}`
    );
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new InputError(`${name}: not a usable YAML document: ${e.message}`, {
      cause: e
    });
  }
}
function isMapping(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
function values(entry, where) {
  if (!isMapping(entry)) throw new InputError(`${where}: expected a mapping of inputs`);
  const out = {};
  for (const [key, value] of Object.entries(entry)) {
    if (!INPUT_NAMES.includes(key) || key === "plan") {
      throw new InputError(`${where}: "${key}" is not an input of multiarch-merge`);
    }
    out[key] = inputValue(value, `${where}: ${key}`, key === "annotations");
  }
  return out;
}
function inputValue(value, where, mapping) {
  if (value === null || value === void 0) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) {
    return value.map((v) => {
      if (typeof v === "string" || typeof v === "number") return String(v);
      throw new InputError(`${where}: a list may hold only strings`);
    }).join("\n");
  }
  if (mapping && isMapping(value)) {
    return Object.entries(value).map(([k, v]) => `${k}=${inputValue(v, `${where}: ${k}`, false)}`).join("\n");
  }
  throw new InputError(
    `${where}: expected a string or a list${mapping ? ", or a mapping of key: value" : ""}`
  );
}
function checkTagsOnce(images, name) {
  const seen = /* @__PURE__ */ new Map();
  images.forEach((image, i) => {
    for (const t of image.tags) {
      const key = formatReference(t);
      const first = seen.get(key);
      if (first !== void 0 && first !== i) {
        throw new InputError(
          `${name}: tag ${key} is in images ${first + 1} and ${i + 1}: a tag can hold only one of them`
        );
      }
      seen.set(key, i);
    }
  });
}

// src/registry/credentials.ts
var import_node_fs4 = require("node:fs");
var import_node_path3 = require("node:path");

// src/registry/scoped-credentials.ts
var import_node_fs3 = require("node:fs");
var import_node_os = require("node:os");
var import_node_path2 = require("node:path");
function dockerConfigDir(env) {
  return env.DOCKER_CONFIG || (0, import_node_path2.join)(env.HOME || (0, import_node_os.homedir)(), ".docker");
}
function buildxConfigDir(env = process.env) {
  return (0, import_node_path2.resolve)(env.BUILDX_CONFIG || (0, import_node_path2.join)(dockerConfigDir(env), "buildx"));
}
function parseScopedConfigKey(key) {
  const at = key.indexOf("@");
  const path = at < 0 ? key : key.slice(0, at);
  const actions = new Set(
    (at < 0 ? "" : key.slice(at + 1)).split(",").map((a) => a.trim()).filter(Boolean)
  );
  const slash = path.indexOf("/");
  const host = slash < 0 ? path : path.slice(0, slash);
  const repository = slash < 0 ? "" : path.slice(slash + 1);
  if (!host || host === "." || host === "..") return void 0;
  return { registry: registryOf(host), ...repository ? { repository } : {}, actions };
}
var MAX_SCOPED_DEPTH = 64;
function readScopedConfigs(env = process.env) {
  const out = [];
  const walk = (dir, key) => {
    if (key.length > MAX_SCOPED_DEPTH) return;
    let entries;
    try {
      entries = (0, import_node_fs3.readdirSync)(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) {
      const path = (0, import_node_path2.join)(dir, e.name);
      if (e.isDirectory()) walk(path, [...key, e.name]);
      else if (e.name === "config.json" && key.length) {
        const parsed = parseScopedConfigKey(key.join("/"));
        if (parsed) out.push({ file: path, ...parsed });
      }
    }
  };
  walk((0, import_node_path2.join)(buildxConfigDir(env), "config"), []);
  return out;
}
function parseScopes(scopes) {
  const out = /* @__PURE__ */ new Map();
  for (const scope of scopes.flatMap((s) => s.split(/\s+/)).filter(Boolean)) {
    const first = scope.indexOf(":");
    const last = scope.lastIndexOf(":");
    const resource = first < 0 || first === last ? scope : scope.slice(0, last);
    let actions = out.get(resource);
    if (!actions) out.set(resource, actions = /* @__PURE__ */ new Set());
    if (first >= 0 && first !== last) {
      for (const a of scope.slice(last + 1).split(",")) if (a) actions.add(a);
    }
  }
  return out;
}
function covers(c, resource, actions) {
  if (c.repository !== void 0 && resource !== `repository:${c.repository}`) return false;
  for (const a of c.actions) if (!actions.has(a)) return false;
  return !(actions.has("push") && c.actions.size > 0 && !c.actions.has("push"));
}
function preference(a, b) {
  return Number(b.repository !== void 0) - Number(a.repository !== void 0) || b.actions.size - a.actions.size || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
}
function selectScopedConfig(configs, registry, scopes) {
  const mine = configs.filter((c) => c.registry === registry);
  if (mine.length === 0) return void 0;
  const resources = parseScopes(scopes ?? []);
  if (resources.size === 0) return mine.length === 1 ? mine[0] : void 0;
  const choices = [...resources].map(([resource, actions]) => ({
    push: actions.has("push"),
    config: mine.filter((c) => covers(c, resource, actions)).sort(preference)[0]
  }));
  const decisive = choices.some((c) => c.push) ? choices.filter((c) => c.push) : choices;
  const first = decisive[0].config;
  return decisive.every((c) => c.config === first) ? first : void 0;
}
function loadScopedConfig(c) {
  const fail2 = (why) => new UserError(
    `the scoped docker config ${c.file} (credentials for ${describeScope(c)}, as docker/login-action's scope input writes them) ${why}: fix or remove it`
  );
  let text;
  try {
    text = (0, import_node_fs3.readFileSync)(c.file, "utf8");
  } catch (e) {
    throw fail2(`could not be read (${e.code ?? "error"})`);
  }
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw fail2("is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw fail2("is not a JSON object");
  return parsed;
}
function describeScope(c) {
  const actions = [...c.actions].join(",");
  return `${c.registry}${c.repository ? `/${c.repository}` : ""}${actions ? `@${actions}` : ""}`;
}

// src/registry/credentials.ts
function serverAddress(registry) {
  return registry === DOCKER_HUB ? "https://index.docker.io/v1/" : registry;
}
function lookup(map, registry) {
  if (!map) return void 0;
  if (Object.hasOwn(map, serverAddress(registry))) return map[serverAddress(registry)];
  for (const [key, value] of Object.entries(map)) if (registryOf(key) === registry) return value;
  return void 0;
}
function readDockerConfig(env = process.env) {
  const dir = dockerConfigDir(env);
  try {
    return JSON.parse((0, import_node_fs4.readFileSync)((0, import_node_path3.join)(dir, "config.json"), "utf8"));
  } catch {
    return {};
  }
}
function dockerConfigCredential(config, registry) {
  const entry = lookup(config.auths, registry);
  if (!entry) return void 0;
  let { username, password } = entry;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i > 0) {
      username = decoded.slice(0, i);
      password = decoded.slice(i + 1).replace(/\0+$/, "");
    }
  }
  if (entry.identitytoken) return { identityToken: entry.identitytoken, username };
  if (username && password) return { username, password };
  return void 0;
}
var HELPER_TIMEOUT_MS = 2e4;
async function runCredentialHelper(helper, registry, timeoutMs = HELPER_TIMEOUT_MS) {
  const { execFile } = await Promise.resolve().then(() => __toESM(require("node:child_process"), 1));
  const program = `docker-credential-${helper}`;
  const fail2 = (why) => new Error(`credential helper ${program} failed for registry ${registry}: ${why}`);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("INPUT_"))
  );
  return new Promise((resolve2, reject) => {
    const child = execFile(
      program,
      ["get"],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024, env },
      (err, stdout, stderr) => {
        if (err) {
          const e = err;
          if (e.code === "ENOENT") return reject(fail2(`${program} is not on PATH`));
          if (e.killed) return reject(fail2(`no answer within ${timeoutMs / 1e3} s`));
          const message = `${stdout} ${stderr}`.trim();
          if (/credentials not found/i.test(message)) return resolve2(void 0);
          return reject(
            fail2(
              `it exited with code ${String(e.code)} (its output is not shown: it may hold a secret)`
            )
          );
        }
        let answer;
        try {
          answer = JSON.parse(stdout);
        } catch {
          return reject(fail2("its answer is not JSON"));
        }
        if (!answer.Secret) return resolve2(void 0);
        if (answer.Username === "<token>") return resolve2({ identityToken: answer.Secret });
        resolve2({ username: answer.Username ?? "", password: answer.Secret });
      }
    );
    child.stdin?.on("error", () => {
    });
    child.stdin?.end(serverAddress(registry));
  });
}
async function configCredential(config, registry, runHelper = runCredentialHelper) {
  const helper = lookup(config.credHelpers, registry) || config.credsStore;
  const fromHelper = helper ? await runHelper(helper, registry) : void 0;
  return fromHelper ?? dockerConfigCredential(config, registry);
}
var StaticCredentials = class {
  constructor(sources = {}) {
    this.sources = sources;
  }
  sources;
  cache = /* @__PURE__ */ new Map();
  scopedConfigs;
  get(registry, scopes) {
    const explicit = this.sources.explicit?.get(registry);
    if (explicit) return Promise.resolve(explicit);
    this.scopedConfigs ??= this.sources.scoped ?? (this.sources.config ? readScopedConfigs(process.env) : []);
    const scoped = selectScopedConfig(this.scopedConfigs, registry, scopes);
    const key = scoped ? `${registry}
${scoped.file}` : registry;
    let found = this.cache.get(key);
    if (!found) this.cache.set(key, found = this.find(registry, scoped));
    return found;
  }
  async find(registry, scoped) {
    const { config, githubToken, runHelper, log } = this.sources;
    if (scoped) {
      const fromScoped = await configCredential(loadScopedConfig(scoped), registry, runHelper);
      if (fromScoped) {
        log?.(`credentials for ${registry}: the scoped docker config ${scoped.file}`);
        return fromScoped;
      }
      log?.(
        `the scoped docker config ${scoped.file} holds no credentials for ${registry}: using the unscoped docker config`
      );
    }
    const found = config ? await configCredential(config, registry, runHelper) : void 0;
    if (found) return found;
    if (registry === "ghcr.io" && githubToken)
      return { username: "x-access-token", password: githubToken };
    return void 0;
  }
};

// src/runner.ts
var REQUEST_TIMEOUT_MS = 6e4;
function createClient(inputs, hooks, start = Date.now()) {
  const budgetMs = inputs.timeoutSeconds * 1e3;
  return new RegistryClient({
    maxConcurrency: inputs.maxConcurrency,
    retries: inputs.retries,
    // One request may wait at most a minute for headers or between body chunks; the whole run
    // gets the timeout input as its budget.
    requestTimeoutMs: Math.min(REQUEST_TIMEOUT_MS, budgetMs),
    deadline: start + budgetMs,
    insecureHosts: new Set(inputs.insecureRegistries),
    ...hooks
  });
}
async function runMerges(setup, hooks, start = Date.now()) {
  const { run: run2, images } = setup;
  const { log } = hooks;
  for (const [i, image] of images.entries()) {
    const name = images.length > 1 ? `image ${i + 1}: ` : "";
    if (image.ignoredAnnotations.length && !Object.keys(image.annotations).length && !Object.keys(image.descriptorAnnotations).length && !image.platformDescriptorAnnotations.length) {
      log.warning(
        `${name}no annotation applies to an index: docker/metadata-action writes manifest: lines by default; set DOCKER_METADATA_ANNOTATIONS_LEVELS: index,manifest-descriptor on it`
      );
    }
    for (const line of image.ignoredAnnotations) {
      log.info(`${name}annotation "${line}" is not for an index or its descriptors: ignored`);
    }
  }
  const rateLimits = /* @__PURE__ */ new Map();
  const client = createClient(
    run2,
    {
      credentials: new StaticCredentials({
        explicit: run2.credentials,
        config: readDockerConfig(),
        githubToken: run2.githubToken,
        log: (line) => log.info(line)
      }),
      onSecret: (s) => hooks.onSecret(s),
      onRetry: ({ url, attempt, delayMs, reason }) => log.info(
        `retry ${attempt} for ${new URL(url).host}${new URL(url).pathname} in ${delayMs} ms (${reason})`
      ),
      onResponse: (url, headers) => {
        hooks.onResponse?.();
        const remaining = headers["ratelimit-remaining"];
        if (typeof remaining === "string") rateLimits.set(new URL(url).host, remaining);
      }
    },
    start
  );
  try {
    const deadline = start + run2.timeoutSeconds * 1e3;
    return await mergeAll(
      client,
      images.map((image) => ({ ...image, dryRun: run2.dryRun, deadline })),
      log
    );
  } finally {
    for (const [host, remaining] of rateLimits)
      log.info(`rate limit remaining at ${host}: ${remaining}`);
    await client.close();
  }
}

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
  mask(secret2) {
    if (secret2) this.secrets.add(secret2);
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

// src/util/run-to-end.ts
function runToEnd(main, onUnfinished) {
  let settled = false;
  const onExit = () => {
    if (!settled) onUnfinished();
  };
  process.once("exit", onExit);
  void main().then(
    () => {
      settled = true;
    },
    (e) => {
      settled = true;
      throw e;
    }
  );
}

// src/cli.ts
runToEnd(
  async () => {
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
  },
  () => {
    process.stderr.write(
      "multiarch-merge: the run stopped before it finished, with nothing left to wait for (a bug)\n"
    );
    process.exitCode = EXIT.failed;
  }
);
