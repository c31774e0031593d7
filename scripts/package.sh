#!/usr/bin/env bash
# Builds the Debian packages (debian/, see DEVELOPERS.md "Packaging") into build-deb/.
#   scripts/package.sh [ARCH...]          amd64 (the default), arm64, armhf; `all` = the three
#   scripts/package.sh --check [ARCH...]  then tests/package/check_debs.sh on what was built
# Each architecture builds in its own copy of the tree, build-deb/src-ARCH: dpkg-buildpackage
# writes its results into the parent folder, so they land in build-deb/ and nowhere outside the
# repository. Tests are not run (DEB_BUILD_OPTIONS=nocheck): scripts/test.sh runs the suite.
# Needs: scripts/deps.sh --package, and for a cross build scripts/deps.sh --cross ARCH.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=$repo/build-deb

usage() {
    echo "usage: scripts/package.sh [--check] [amd64|arm64|armhf|all]..." >&2
    exit 2
}

check=0
arches=()
for a in "$@"; do
    case $a in
    --check) check=1 ;;
    all) arches+=(amd64 arm64 armhf) ;;
    amd64 | arm64 | armhf) arches+=("$a") ;;
    *) usage ;;
    esac
done
[ ${#arches[@]} -gt 0 ] || arches=(amd64)
# one build per architecture, in the order given
mapfile -t arches < <(printf '%s\n' "${arches[@]}" | awk '!seen[$0]++')

scripts/deps.sh --package
host=$(dpkg --print-architecture)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
mkdir -p "$out"

t_all=$SECONDS
for a in "${arches[@]}"; do
    t0=$SECONDS
    src=$out/src-$a
    log=$out/build-$a.log
    echo "== pdm-agent $version for $a (log: ${log#"$repo"/})"
    cross=()
    [ "$a" = "$host" ] || cross=(-a "$a")
    # Before anything is deleted: the target's libraries, and its compiler (which
    # dpkg-checkbuilddeps does not look for)
    cc=$(dpkg-architecture -a "$a" -qDEB_HOST_GNU_TYPE 2>/dev/null)-gcc
    if ! dpkg-checkbuilddeps "${cross[@]}" debian/control >"$log" 2>&1 || ! command -v "$cc" >/dev/null; then
        cat "$log" >&2
        command -v "$cc" >/dev/null || echo "package.sh: $cc is missing" >&2
        echo "package.sh: build dependencies for $a are missing: scripts/deps.sh --cross $a" >&2
        exit 1
    fi
    rm -rf "$src"
    rm -f "$out"/pdm-agent*_"$version"_"$a".{deb,buildinfo,changes}
    mkdir -p "$src"
    # The working tree as it is (uncommitted edits included), without builds and git.
    tar -C "$repo" --exclude=./.git --exclude='./build*' --exclude=./demo-run -cf - . |
        tar -C "$src" -xf -
    if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        dpkg-buildpackage -b -us -uc "${cross[@]}") >>"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "package.sh: the $a build failed; the whole log is $log" >&2
        exit 1
    fi
    ls "$out"/pdm-agent*_"$version"_"$a".deb | sed "s|^$repo/|   |"
    echo "   $((SECONDS - t0)) s"
done
echo "== built ${arches[*]} in $((SECONDS - t_all)) s"

if [ $check = 1 ]; then
    tests/package/check_debs.sh "$out" "${arches[@]}"
fi
