#!/usr/bin/env bash
# Formats our C sources with .clang-format; --check only reports files that differ.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null || find lib agent drivers models train tools tests -name '*.[ch]')
if ! command -v clang-format >/dev/null; then
    echo "format.sh: clang-format not installed; skipping" >&2
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    bad=0
    for f in "${files[@]}"; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "format.sh: $f is not formatted (run scripts/format.sh)"
            bad=1
        fi
    done
    exit $bad
fi
clang-format -i "${files[@]}"
