#!/usr/bin/env bash
# Runs pnpm 9 without needing it installed globally (corepack is not used: it fails on some machines).
set -euo pipefail
if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == 9.* ]]; then
  exec pnpm "$@"
fi
exec npx --yes pnpm@9 "$@"
