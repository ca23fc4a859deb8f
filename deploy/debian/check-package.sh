#!/usr/bin/env bash
# Builds both Debian packages with cargo-deb from the dev-profile binaries (no release build in
# CI), unpacks them into a throwaway root and checks what an admin gets: the binaries run, the
# units and examples are where the IT guide says, the shipped examples are the repository's,
# and those examples validate with the packaged binaries.
# Usage: deploy/debian/check-package.sh   (after `cargo build --workspace --bins`)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
command -v cargo-deb >/dev/null 2>&1 || { echo "check-package.sh: cargo-deb is missing (cargo install cargo-deb --locked)" >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail=0
expect() { # expect PATH-IN-ROOT DESCRIPTION
    if [[ -e "$work/root/$1" ]]; then echo "ok    $2"; else echo "FAIL  $2 ($1 missing)"; fail=1; fi
}

for pkg in outpost-agent outpost-collector; do
    cargo deb -p "$pkg" --no-build --profile dev --no-strip -o "$work/$pkg.deb" >/dev/null 2>"$work/$pkg.log" \
        || { cat "$work/$pkg.log" >&2; exit 1; }
    dpkg-deb -x "$work/$pkg.deb" "$work/root"
    [[ "$(dpkg-deb -f "$work/$pkg.deb" Depends)" == adduser* ]] || { echo "FAIL  $pkg depends on adduser"; fail=1; }
    "$work/root/usr/bin/$pkg" --version >/dev/null || { echo "FAIL  $pkg binary runs"; fail=1; }
    expect "usr/bin/$pkg" "$pkg: binary in /usr/bin"
    expect "usr/lib/systemd/system/$pkg.service" "$pkg: systemd unit"
    expect "usr/share/doc/$pkg/operator-guide.md" "$pkg: operator guide"
    if [ "$pkg" = outpost-agent ]; then
        expect "usr/share/doc/$pkg/img/site-page-ok.png" "$pkg: the guide's screenshots"
    fi
done
expect usr/share/doc/outpost-agent/examples/agent.toml "agent: example config"
expect usr/share/doc/outpost-collector/examples/collector-production.toml "collector: production example"
cmp -s deploy/examples/agent-small-plant.toml "$work/root/usr/share/doc/outpost-agent/examples/agent.toml" \
    || { echo "FAIL  the shipped agent example differs from deploy/examples"; fail=1; }
cmp -s deploy/systemd/outpost-agent.service "$work/root/usr/lib/systemd/system/outpost-agent.service" \
    || { echo "FAIL  the shipped agent unit differs from deploy/systemd"; fail=1; }
# The examples, validated by the packaged binaries.
deploy/examples/validate.sh "$work/root/usr/bin" >/dev/null || { echo "FAIL  examples validate with the packaged binaries"; fail=1; }
[[ $fail == 0 ]] && echo "packages ok: $(cd "$work" && ls ./*.deb | tr '\n' ' ')"
exit $fail
