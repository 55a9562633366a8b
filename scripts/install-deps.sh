#!/usr/bin/env bash
# Installs what Shoal needs on a Debian machine: system packages (when root and missing) and npm packages.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v uftp >/dev/null 2>&1 || need+=(uftp)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "shoal: installing system packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "shoal: missing system packages (${need[*]}); run as root or install them: apt-get install ${need[*]}" >&2
  fi
fi

export npm_config_nodedir=${npm_config_nodedir:-/usr}
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "shoal: installing npm packages"
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
fi
# Batched UDP I/O for multicast (native/shoal_udp.c); npm's install step builds it too. Quick when up to date.
node scripts/build-native.mjs
