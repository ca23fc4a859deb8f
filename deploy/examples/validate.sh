#!/usr/bin/env bash
# Validates every example config with the real binaries:
#   outpost-agent validate --config deploy/examples/agent-*.toml
#   outpost-collector validate --config deploy/examples/collector-*.toml
#
# The collector's validate also checks that the files a config names (certificates, token
# files) exist. The examples name /etc/outpost/...; this script validates copies whose
# /etc/outpost/ and /var/lib/outpost/ paths point into a temp dir holding empty stand-ins.
#
# Usage: validate.sh [BIN_DIR]   (default: target/debug, then target/release, then $PATH)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

find_bin() {
    local name="$1" dir
    for dir in "${BIN_DIR:-}" "$root/target/debug" "$root/target/release"; do
        if [[ -n "$dir" && -x "$dir/$name" ]]; then echo "$dir/$name"; return; fi
    done
    command -v "$name" || { echo "validate.sh: $name not found; build it (cargo build) first" >&2; exit 2; }
}
BIN_DIR="${1:-}"
agent="$(find_bin outpost-agent)"
collector="$(find_bin outpost-collector)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/etc/outpost" "$work/var/lib/outpost"

failed=0
validate() { # BINARY FILE
    local bin="$1" file="$2" copy
    copy="$work/$(basename "$file")"
    sed -e "s|/etc/outpost/|$work/etc/outpost/|g" -e "s|/var/lib/outpost/|$work/var/lib/outpost/|g" \
        "$file" >"$copy"
    # Stand-ins for every file the config names under /etc/outpost/.
    grep -o "$work/etc/outpost/[A-Za-z0-9._-]*" "$copy" | sort -u | while read -r f; do
        [[ -e "$f" ]] || echo "stand-in" >"$f"
    done
    local status=0
    "$bin" validate --config "$copy" || status=$?
    if [[ "$status" -eq 0 ]]; then
        echo "ok    $(basename "$file")"
    else
        echo "FAIL  $(basename "$file") (exit $status)"
        failed=$((failed + 1))
    fi
}

for f in "$here"/agent-*.toml; do validate "$agent" "$f"; done
for f in "$here"/collector-*.toml; do validate "$collector" "$f"; done
[[ "$failed" -eq 0 ]] || { echo "$failed example(s) failed validation" >&2; exit 1; }
