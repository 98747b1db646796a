#!/usr/bin/env bash
# tools.sh: the programs the tests need beyond Go and PostgreSQL, installed when missing.
#   hledger   the audit tests check our journal export with it (Debian's package is the reference)
#   chromium  the console's browser test drives it (through chromedp)
set -euo pipefail

need=()
command -v hledger >/dev/null 2>&1 || need+=(hledger)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "tools: installing ${need[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need[@]}" >/dev/null
  exit 0
fi
echo "tools: missing ${need[*]}: install them (Debian: apt-get install ${need[*]}); the tests that use them fail without" >&2
exit 0
