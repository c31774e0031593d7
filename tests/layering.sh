#!/usr/bin/env bash
# Lower floors never reach up: fails when a source file includes a header from a folder its own
# folder must not depend on.
#
#   lib/      building blocks with no project knowledge: includes nothing from the folders below
#   drivers/  bus drivers: nothing from agent/, train/, tools/
#   models/   runtime scoring: nothing from agent/, train/, tools/
#   train/    offline fitting (pdmctl train/eval): nothing from agent/, tools/
#   agent/    the daemon: nothing from train/ (pdm-agent does not link pdmtrain) or tools/
#
# Every #include "..." (and <...> that names a file of the tree) is resolved as the compiler
# does: next to the including file first, then from the source root (the include path); an
# include that resolves to neither (system and generated headers) is not ours and is skipped.
#
# usage: tests/layering.sh [SOURCE_DIR]     (default: the folder above this script)
set -uo pipefail

root=${1:-$(dirname "$0")/..}
root=$(cd "$root" && pwd) || exit 1

declare -A forbidden=(
    [lib]="agent drivers models train tools"
    [drivers]="agent train tools"
    [models]="agent train tools"
    [train]="agent tools"
    [agent]="train tools"
)

# Normalises a relative path into REPLY ("models/../lib/./log.h" -> "lib/log.h") without
# forking; REPLY is empty for a path that climbs out of the root.
normalize() {
    local -a parts out=()
    local part
    REPLY=
    IFS=/ read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        case $part in
        '' | .) ;;
        ..)
            [ ${#out[@]} -gt 0 ] || return 0
            unset 'out[${#out[@]}-1]'
            ;;
        *) out+=("$part") ;;
        esac
    done
    local IFS=/
    REPLY="${out[*]}"
}

bad=0
files=0
checked=0
for folder in "${!forbidden[@]}"; do
    [ -d "$root/$folder" ] || continue
    while IFS= read -r -d '' path; do
        rel=${path#"$root"/}
        dir=${rel%/*}
        files=$((files + 1))
        n=0
        while IFS= read -r line; do
            n=$((n + 1))
            [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*([\"\<])([^\"\>]+)[\"\>] ]] || continue
            kind=${BASH_REMATCH[1]}
            inc=${BASH_REMATCH[2]}
            target=
            if [ "$kind" = '"' ]; then
                normalize "$dir/$inc"
                [ -n "$REPLY" ] && [ -f "$root/$REPLY" ] && target=$REPLY
            fi
            if [ -z "$target" ]; then
                normalize "$inc"
                [ -n "$REPLY" ] && [ -f "$root/$REPLY" ] && target=$REPLY
            fi
            [ -n "$target" ] || continue
            checked=$((checked + 1))
            top=${target%%/*}
            [ "$top" = "$target" ] && continue # a file at the root
            for f in ${forbidden[$folder]}; do
                if [ "$top" = "$f" ]; then
                    echo "layering: $rel:$n includes $target: $folder/ must not include $f/"
                    bad=1
                fi
            done
        done <"$path"
    done < <(find "$root/$folder" -type f \( -name '*.c' -o -name '*.h' \) -print0)
done

if [ "$files" -eq 0 ]; then
    echo "layering: no sources found under $root (wrong source folder?)"
    exit 1
fi
if [ "$bad" -ne 0 ]; then
    echo "layering: lower floors never reach up (DEVELOPERS.md, Layout): pass the value in instead"
    exit 1
fi
echo "layering: $files files, $checked includes of the tree, none reaches up"
