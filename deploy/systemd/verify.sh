#!/usr/bin/env bash
# Checks the systemd units with `systemd-analyze verify`.
#
# The units name /usr/bin/outpost-agent and /usr/bin/outpost-collector; when those are not
# installed (a build machine, CI), the check runs on copies whose ExecStart points at
# BIN_DIR (default: target/release, then target/debug) or, failing that, /bin/true, so every
# other setting is still verified. Exits non-zero on any finding.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "verify.sh: systemd-analyze is not installed; skipping" >&2
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for unit in outpost-agent.service outpost-collector.service; do
    bin="/usr/bin/${unit%.service}"
    if [[ ! -x "$bin" ]]; then
        bin=/bin/true
        for dir in "${BIN_DIR:-}" "$root/target/release" "$root/target/debug"; do
            if [[ -n "$dir" && -x "$dir/${unit%.service}" ]]; then
                bin="$dir/${unit%.service}"
                break
            fi
        done
    fi
    sed "s|/usr/bin/${unit%.service}|$bin|" "$here/$unit" >"$work/$unit"
done

# systemd-analyze prints findings on stderr and may still exit 0 for some; treat any output
# as a failure.
out="$(cd "$work" && systemd-analyze verify ./outpost-agent.service ./outpost-collector.service 2>&1)" || {
    echo "$out" >&2
    exit 1
}
if [[ -n "$out" ]]; then
    echo "$out" >&2
    exit 1
fi
echo "systemd units verified: outpost-agent.service outpost-collector.service"
