#!/usr/bin/env bash
# Installs what the demo, tests and benchmark need on a fresh machine, and nothing when it is there:
# the CNCF Distribution registry, skopeo, buildah and tinyproxy (Debian packages), and the npm
# dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=''
  [ "$(id -u)" -eq 0 ] || sudo='sudo'
  echo "installing ${missing[*]} (apt-get)" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi

# npm ci only when node_modules is missing or was installed from another lock file.
stamp=node_modules/.multiarch-merge-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/jest ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund >&2
  echo "$want" > "$stamp"
fi
