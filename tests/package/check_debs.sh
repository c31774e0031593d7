#!/usr/bin/env bash
# Checks the .debs that scripts/package.sh built (issue 5, packages).
#   tests/package/check_debs.sh [DIR [ARCH...]]     DIR: build-deb/, ARCH: amd64 arm64 armhf
#
# Every architecture, read from the .deb:
# - lintian reports no error and no warning (overrides carry their reasons in
#   debian/pdm-agent.lintian-overrides; info tags are printed);
# - Package, Version (= debian/changelog, whose upstream part is the CMake project version),
#   Architecture, Maintainer; Depends names adduser and the package of every shared library the
#   programs load (their ELF NEEDED entries, looked up with dpkg -S);
# - /etc/pdm-agent/agent.conf is the only conffile; the file list is the expected one and the
#   same on every architecture; the programs are ELF for that CPU (and, when qemu-user and the
#   target's libraries are installed, print their version under emulation).
# The package of this machine's architecture is then installed for real with dpkg (root only):
# install (files, user in dialout, owners and modes, unit installed but neither enabled nor
# started), commissioning by editing the conffile, upgrades to a version-bumped build (the edit
# is kept without a question; the unit is restarted only when enabled or running), remove (config
# and state stay) and purge (both go; the system user stays, as is common practice).
# systemd is not PID 1 here, and on a developer's machine nothing may really start: the maintainer
# scripts run in a private mount namespace where /run/systemd/system exists, with `systemctl`
# standing in as a recorder (enablement answered by the real `systemctl --root=/`). Everything the
# test installed is purged on exit, also on failure; a pdm-agent already on the machine is never
# touched (skip). Exit 77: skipped (no dpkg, or not root for the install part).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(cd "${1:-$src/build-deb}" && pwd)
shift || true
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64 armhf)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

command -v dpkg-deb >/dev/null && command -v dpkg >/dev/null || {
    echo "SKIP: dpkg is not available"
    exit 77
}
command -v lintian >/dev/null || fail "lintian is missing (scripts/deps.sh --package)"
command -v readelf >/dev/null || fail "readelf is missing (binutils, scripts/deps.sh --package)"

version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
upstream=${version%%-*}
cmake_version=$(sed -n 's/^project(pdm-agent VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$upstream" = "$cmake_version" ] ||
    fail "debian/changelog says $version, CMakeLists.txt project() says $cmake_version"
maintainer=$(sed -n 's/^Maintainer: //p' "$src/debian/control")

T=$dir/check-tmp
rm -rf "$T"
mkdir -p "$T"

# ---- what every package must contain ------------------------------------------------------------
expected=(
    /etc/pdm-agent/agent.conf
    /lib/systemd/system/pdm-agent.service
    /usr/bin/pdm-agent /usr/bin/pdmctl /usr/bin/pdm-sim
    /usr/share/man/man1/pdmctl.1.gz /usr/share/man/man1/pdm-sim.1.gz
    /usr/share/man/man5/pdm-agent.conf.5.gz /usr/share/man/man8/pdm-agent.8.gz
    /usr/share/pdm-agent/examples/agent.conf /usr/share/pdm-agent/examples/board.conf
    /usr/share/pdm-agent/examples/models/compressor.model
    /usr/share/pdm-agent/proto/pdm/v1/pdm.proto
    /usr/share/doc/pdm-agent/copyright /usr/share/doc/pdm-agent/MODELS.md.gz
)
for p in "$src"/profiles/*.profile; do
    expected+=("/usr/share/pdm-agent/profiles/${p##*/}")
done

declare -A elf_machine=([amd64]="2 3e" [arm64]="2 b7" [armhf]="1 28")
declare -A qemu=([arm64]=qemu-aarch64-static [armhf]=qemu-arm-static)
declare -A loader=([arm64]=/lib/ld-linux-aarch64.so.1 [armhf]=/lib/ld-linux-armhf.so.3)

first_list=
for a in "${arches[@]}"; do
    deb=$dir/pdm-agent_${version}_$a.deb
    [ -f "$deb" ] || fail "$deb is missing: scripts/package.sh $a"
    echo "== $a: ${deb#"$src"/}"

    # every tag is shown (info and pedantic too); errors and warnings fail
    lopts=(--display-info --pedantic --fail-on error,warning --tag-display-limit 0)
    if ! lintian "${lopts[@]}" "$deb" >"$T/lintian-$a.log" 2>&1; then
        cat "$T/lintian-$a.log"
        fail "lintian reports errors or warnings for $a"
    fi
    grep -v '^running with root privileges' "$T/lintian-$a.log" | sed 's/^/   lintian: /' || true
    ok "$a: lintian has no error or warning"

    field() { dpkg-deb -f "$deb" "$1"; }
    [ "$(field Package)" = pdm-agent ] || fail "$a: Package is '$(field Package)'"
    [ "$(field Version)" = "$version" ] || fail "$a: Version is '$(field Version)', not $version"
    [ "$(field Architecture)" = "$a" ] || fail "$a: Architecture is '$(field Architecture)'"
    [ "$(field Maintainer)" = "$maintainer" ] || fail "$a: Maintainer is '$(field Maintainer)'"
    depends=" $(field Depends | tr -d ' ' | tr ',' ' ' | sed 's/([^)]*)//g') "

    dpkg-deb -e "$deb" "$T/control-$a"
    [ "$(cat "$T/control-$a/conffiles")" = /etc/pdm-agent/agent.conf ] ||
        fail "$a: conffiles is not just /etc/pdm-agent/agent.conf: $(cat "$T/control-$a/conffiles")"

    dpkg-deb -c "$deb" | awk '{ sub(/^\./, "", $6); print $1, $2, $6 }' >"$T/contents-$a"
    for p in "${expected[@]}"; do
        grep -q " $p\$" "$T/contents-$a" || fail "$a: $p is not in the package"
    done
    for p in /usr/bin/pdm-agent /usr/bin/pdmctl /usr/bin/pdm-sim; do
        grep -q "^-rwxr-xr-x root/root $p\$" "$T/contents-$a" || fail "$a: $p is not 0755 root"
    done
    grep -q "^-rw-r--r-- root/root /etc/pdm-agent/agent.conf\$" "$T/contents-$a" ||
        fail "$a: agent.conf is not 0644 root"
    awk '{ print $3 }' "$T/contents-$a" >"$T/paths-$a"
    if [ -z "$first_list" ]; then
        first_list=$a
    elif ! diff -u "$T/paths-$first_list" "$T/paths-$a" >"$T/paths.diff"; then
        cat "$T/paths.diff"
        fail "the $a package's files differ from the $first_list package's"
    fi

    # The programs: built for this CPU, and every library they load is in Depends.
    rm -rf "$T/root-$a"
    dpkg-deb -x "$deb" "$T/root-$a"
    triplet=$(dpkg-architecture -a "$a" -qDEB_HOST_MULTIARCH 2>/dev/null)
    for b in pdm-agent pdmctl pdm-sim; do
        f=$T/root-$a/usr/bin/$b
        # EI_CLASS (byte 4: 1 = 32-bit, 2 = 64-bit) and e_machine (byte 18, little-endian)
        got="$(od -An -tx1 -j4 -N1 "$f" | tr -d ' ' | sed 's/^0//') $(od -An -tx1 -j18 -N1 "$f" | tr -d ' ')"
        [ "$got" = "${elf_machine[$a]}" ] || fail "$a: $b is ELF class/machine '$got', not '${elf_machine[$a]}'"
        for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            owner=
            for d in /lib/$triplet /usr/lib/$triplet; do
                [ -e "$d/$lib" ] || continue
                owner=$(dpkg -S "$d/$lib" 2>/dev/null | head -n 1 | cut -d: -f1) && break
            done
            [ -n "$owner" ] || fail "$a: cannot tell which package has $lib (are $a's libraries installed? scripts/deps.sh --cross $a)"
            case $depends in
            *" $owner "*) ;;
            *) fail "$a: $b loads $lib from $owner, which Depends does not name: $(field Depends)" ;;
            esac
        done
    done
    case $depends in *" adduser "*) ;; *) fail "$a: Depends lacks adduser (the postinst uses it)" ;; esac
    ok "$a: control fields, Depends ($(field Depends | tr -d '\n'))"
    ok "$a: conffile, $(wc -l <"$T/paths-$a") paths, programs are ELF for $a"

    # Under emulation: the packaged program starts and knows its version.
    if [ -n "${qemu[$a]:-}" ]; then
        if command -v "${qemu[$a]}" >/dev/null && [ -e "${loader[$a]}" ]; then
            # no -L: the target's loader and libraries live in the multiarch folders
            v=$("${qemu[$a]}" "$T/root-$a/usr/bin/pdm-agent" --version) ||
                fail "$a: pdm-agent --version under ${qemu[$a]} failed"
            [ "$v" = "pdm-agent $upstream" ] || fail "$a: pdm-agent --version says '$v'"
            ok "$a: pdm-agent --version under ${qemu[$a]}: $v"
        else
            echo "   ($a: not run under emulation: ${qemu[$a]} or ${loader[$a]} is missing)"
        fi
    fi
done

# ---- install, upgrade, remove, purge on this machine ---------------------------------------------
host=$(dpkg --print-architecture)
deb=$dir/pdm-agent_${version}_$host.deb
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the install test needs root (dpkg -i)"
    exit 77
fi
[ -f "$deb" ] || {
    echo "SKIP: no package for this machine's architecture ($host) among: ${arches[*]}"
    exit 77
}
state=$(dpkg-query -W -f='${db:Status-Status}' pdm-agent 2>/dev/null || true)
if [ -n "$state" ] && [ "$state" != not-installed ]; then
    echo "SKIP: pdm-agent is on this machine ($state); this test installs and purges it, and"
    echo "      leaves yours alone. dpkg --purge pdm-agent first if it is a leftover."
    exit 77
fi
if ! unshare --mount --propagation private -- true 2>/dev/null; then
    echo "SKIP: no private mount namespace here (unshare --mount): the maintainer scripts could"
    echo "      not be watched deciding about systemd, and dpkg is not run without that"
    exit 77
fi
wants=/etc/systemd/system/multi-user.target.wants/pdm-agent.service
for p in /etc/pdm-agent /var/lib/pdm-agent "$wants"; do
    if [ -e "$p" ] || [ -L "$p" ]; then
        echo "SKIP: $p exists without the package; this test would delete it"
        exit 77
    fi
done

conf=/etc/pdm-agent/agent.conf
systemctl_real=$(command -v systemctl || true)
user_before=$(getent passwd pdm-agent || true)
group_before=$(getent group pdm-agent || true)

# The stand-in systemctl: records every call. What concerns unit files only is done by the real
# systemctl with --root=/ (it never talks to a running manager): deb-systemd-helper's presets,
# is-enabled. is-active reads $T/active; starting and stopping are only recorded.
mkdir -p "$T/bin"
cat >"$T/bin/systemctl" <<EOF
#!/bin/sh
echo "\$*" >>"$T/systemctl.log"
case " \$* " in
*" --root="*)
    [ -n "$systemctl_real" ] || exit 0
    exec "$systemctl_real" "\$@" ;;
*" is-enabled "*)
    [ -n "$systemctl_real" ] || { echo disabled; exit 1; }
    exec "$systemctl_real" --root=/ is-enabled pdm-agent.service ;;
*" is-active "*) [ -e "$T/active" ] ;;
*) exit 0 ;;
esac
EOF
# Images built with Docker carry a policy-rc.d that vetoes every start (exit 101); inside the
# namespace it says yes, so the package's own decisions are what is observed.
printf '#!/bin/sh\nexit 0\n' >"$T/policy-rc.d"
chmod +x "$T/bin/systemctl" "$T/policy-rc.d"

as_systemd_host() { # COMMAND...: with /run/systemd/system present and systemctl recorded
    PATH="$T/bin:$PATH" unshare --mount --propagation private -- sh -c '
        mount -t tmpfs -o mode=0755 pdm-test-run /run && mkdir -p /run/systemd/system || exit 1
        if [ -e /usr/sbin/policy-rc.d ]; then mount --bind "$0" /usr/sbin/policy-rc.d || exit 1; fi
        exec "$@"' "$T/policy-rc.d" "$@"
}

dpkg_run() { # NAME ARGS...: dpkg ARGS, output in $T/NAME.log; waits (bounded) for dpkg's lock
    local name=$1 deadline=$((SECONDS + 600))
    shift
    : >"$T/systemctl.log"
    while :; do
        if as_systemd_host dpkg "$@" </dev/null >"$T/$name.log" 2>&1; then
            return 0
        fi
        grep -Eq 'lock was locked|database is locked' "$T/$name.log" && [ $SECONDS -lt $deadline ] ||
            return 1
        sleep 2
    done
}

installed=0
agent=
cleanup() {
    local rc=$?
    set +e
    if [ -n "$agent" ]; then # the smoke run below was interrupted
        kill "$agent" 2>/dev/null
        wait "$agent" 2>/dev/null
    fi
    if [ $installed = 1 ]; then
        dpkg_run cleanup-purge --purge pdm-agent || {
            echo "cleanup: dpkg --purge pdm-agent failed:"
            cat "$T/cleanup-purge.log"
        }
    fi
    # none of these existed before (checked above): whatever a faulty package left goes
    rm -rf /etc/pdm-agent /var/lib/pdm-agent
    rm -f "$wants"
    # the test made the user: take it away again (a real purge keeps it)
    if [ -z "$user_before" ] && getent passwd pdm-agent >/dev/null; then
        deluser --quiet --system pdm-agent >/dev/null 2>&1 || userdel pdm-agent
    fi
    if [ -z "$group_before" ] && getent group pdm-agent >/dev/null; then
        delgroup --quiet --system pdm-agent >/dev/null 2>&1 || groupdel pdm-agent
    fi
    if [ $rc -ne 0 ]; then
        echo "---- FAILED ($rc); logs in $T"
        for f in "$T"/*.log; do
            [ -s "$f" ] || continue
            echo "==== ${f##*/} (last 20 lines)"
            tail -n 20 "$f"
        done
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

started() { grep -Eq "(^| )(start|restart) " "$T/systemctl.log"; }
echo "== $host: dpkg on this machine"

# ---- install ----
installed=1
dpkg_run install -i "$deb" || fail "dpkg -i failed: $(tail -n 5 "$T/install.log")"
[ "$(dpkg-query -W -f='${Status} ${Version}' pdm-agent)" = "install ok installed $version" ] ||
    fail "after dpkg -i: $(dpkg-query -W -f='${Status} ${Version}' pdm-agent)"
for b in pdm-agent pdmctl pdm-sim; do
    [ "$("/usr/bin/$b" --version)" = "$b $upstream" ] || fail "/usr/bin/$b --version: $("/usr/bin/$b" --version)"
done
cmp -s /lib/systemd/system/pdm-agent.service "$src/packaging/pdm-agent.service" ||
    fail "the installed unit differs from packaging/pdm-agent.service"
grep -q '^Documentation=man:pdm-agent(8)$' /lib/systemd/system/pdm-agent.service ||
    fail "the unit does not point at man:pdm-agent(8)"
man -w pdm-agent.conf >/dev/null 2>&1 || ! command -v man >/dev/null || fail "man finds no pdm-agent.conf(5)"
[ "$(dpkg-query -W -f='${Conffiles}' pdm-agent | awk 'NF { print $1 }')" = "$conf" ] ||
    fail "dpkg does not list $conf as the conffile"
ok "installed $version: programs run, unit and man pages in place, $conf is a conffile"

IFS=: read -r _ _ uid _ _ home shell < <(getent passwd pdm-agent) || fail "no user pdm-agent"
[ "$uid" -lt 1000 ] || fail "pdm-agent is uid $uid: not a system user"
[ "$home" = /var/lib/pdm-agent ] && [ "$shell" = /usr/sbin/nologin ] ||
    fail "pdm-agent: home $home, shell $shell"
id -nG pdm-agent | tr ' ' '\n' | grep -qx dialout || fail "pdm-agent is not in group dialout: $(id -nG pdm-agent)"
[ "$(stat -c '%U:%G %a' /var/lib/pdm-agent)" = "pdm-agent:pdm-agent 750" ] ||
    fail "/var/lib/pdm-agent is $(stat -c '%U:%G %a' /var/lib/pdm-agent)"
[ "$(stat -c '%U:%G %a' /etc/pdm-agent/tls)" = "root:pdm-agent 750" ] ||
    fail "/etc/pdm-agent/tls is $(stat -c '%U:%G %a' /etc/pdm-agent/tls)"
[ "$(stat -c '%U:%G %a' $conf)" = "root:root 644" ] || fail "$conf is $(stat -c '%U:%G %a' $conf)"
ok "system user pdm-agent (uid $uid, groups: $(id -nG pdm-agent)); /var/lib/pdm-agent pdm-agent 0750"

[ ! -e "$wants" ] || fail "the unit was enabled by the install"
if [ -n "$systemctl_real" ]; then
    e=$("$systemctl_real" --root=/ is-enabled pdm-agent.service 2>&1) || true
    [ "$e" = disabled ] || fail "systemctl is-enabled says '$e' after install"
fi
grep -q 'daemon-reload' "$T/systemctl.log" || fail "postinst did not reload systemd: $(cat "$T/systemctl.log")"
! started || fail "a fresh install started the unit: $(cat "$T/systemctl.log")"
ok "unit installed, disabled, not started (systemctl calls: $(paste -sd';' "$T/systemctl.log"))"

# The template does not run as shipped: --check names each placeholder's line.
rc=0
(cd / && runuser -u pdm-agent -- pdm-agent --check) >"$T/check-template.log" 2>&1 || rc=$?
[ $rc = 78 ] || fail "--check on the shipped template exited $rc, not 78"
for key in agent.device_id mqtt.uri asset.compressor-1.installed; do
    grep -Eq "^$conf:[0-9]+: $key: " "$T/check-template.log" || fail "--check does not name $key"
done
ok "the shipped template fails --check at its placeholders (exit 78)"

# ---- commissioning: the steps the template's header lists ----
"$src/scripts/pki.sh" /etc/pdm-agent/tls gw-pkgtest >"$T/pki.log" 2>&1 || fail "pki.sh failed"
chown root:pdm-agent /etc/pdm-agent/tls/device.key
chmod 0640 /etc/pdm-agent/tls/device.key
sed -i -e 's/<DEVICE-ID>/gw-pkgtest/' -e 's/<BROKER-HOST>/127.0.0.1/' -e 's/<YYYY-MM-DD>/2019-06-01/' $conf
! grep -v '^;' $conf | grep -q '<[A-Z-]*>' || fail "placeholders left: $(grep -n '^[^;]*<[A-Z-]*>' $conf)"
echo "; commissioned by check_debs.sh" >>$conf
cp $conf "$T/agent.conf.edited"
out=$(cd / && runuser -u pdm-agent -- pdm-agent --check 2>&1) || fail "--check after commissioning: $out"
[ "$out" = "configuration OK" ] || fail "--check after commissioning: $out"
ok "commissioned: the service user reads config, key and model (--check OK)"

# The agent runs as its user with the packaged layout and keeps its store in the state folder
# (no broker and no serial adapter here: it keeps trying both and runs on).
# setpriv execs (runuser would stay in between), so $agent is the agent's own pid.
(cd / && exec setpriv --reuid=pdm-agent --regid=pdm-agent --init-groups -- pdm-agent) >"$T/agent.log" 2>&1 &
agent=$!
deadline=$((SECONDS + 20))
until [ -s /var/lib/pdm-agent/pdm-agent.db ]; do
    kill -0 $agent 2>/dev/null || fail "the agent exited: $(tail -n 5 "$T/agent.log")"
    [ $SECONDS -lt $deadline ] || fail "no store in /var/lib/pdm-agent after 20 s"
    sleep 0.2
done
kill -TERM $agent
rc=0
wait $agent || rc=$?
agent=
[ $rc = 0 ] || fail "the agent exited $rc on SIGTERM: $(tail -n 5 "$T/agent.log")"
[ "$(stat -c %U /var/lib/pdm-agent/pdm-agent.db)" = pdm-agent ] || fail "the store is not the agent's"
ok "the agent ran as pdm-agent and wrote its store to /var/lib/pdm-agent"

# ---- upgrades ----
# A build with a higher version and the same content: the packaged conffile is unchanged, so dpkg
# must keep the edited one without asking (stdin is /dev/null: a question would fail the run).
bumped=$version+pkgtest1
rm -rf "$T/bump"
dpkg-deb -R "$deb" "$T/bump"
sed -i "s/^Version: .*/Version: $bumped/" "$T/bump/DEBIAN/control"
dpkg-deb --root-owner-group -b "$T/bump" "$T/pdm-agent_${bumped}_$host.deb" >/dev/null
newdeb=$T/pdm-agent_${bumped}_$host.deb

upgrade() { # NAME: dpkg -i the bumped package; the conffile survives untouched
    dpkg_run "$1" -i "$newdeb" || fail "$1: dpkg -i $bumped failed: $(tail -n 5 "$T/$1.log")"
    [ "$(dpkg-query -W -f='${Version}' pdm-agent)" = "$bumped" ] || fail "$1: version not $bumped"
    ! grep -q "Configuration file '$conf'" "$T/$1.log" || fail "$1: dpkg asked about $conf"
    cmp -s $conf "$T/agent.conf.edited" || fail "$1: the edited $conf was changed"
    ! ls $conf.dpkg-* >/dev/null 2>&1 || fail "$1: dpkg left $(ls $conf.dpkg-*)"
    [ -s /var/lib/pdm-agent/pdm-agent.db ] || fail "$1: the store is gone"
    ! grep -Eq '(^| )stop ' "$T/systemctl.log" || fail "$1: the unit was stopped before the upgrade"
}
enable_unit() { "$systemctl_real" --root=/ "$1" pdm-agent.service >/dev/null 2>&1 || fail "systemctl $1"; }

upgrade upgrade-disabled
! started || fail "upgrade started a disabled, stopped unit: $(cat "$T/systemctl.log")"
ok "upgrade to $bumped: the edited conffile kept, no question; disabled and stopped: not started"

if [ -n "$systemctl_real" ]; then
    enable_unit enable
    [ -L "$wants" ] || fail "systemctl enable made no $wants"
    upgrade upgrade-enabled
    grep -q 'restart pdm-agent.service' "$T/systemctl.log" ||
        fail "upgrade did not restart the enabled unit: $(cat "$T/systemctl.log")"
    [ -L "$wants" ] || fail "upgrade disabled the unit"
    enable_unit disable
    ok "upgrade of an enabled unit: restarted after the new files are in, and still enabled"
else
    echo "   (systemctl is missing: the enabled-unit upgrade is not checked)"
fi
touch "$T/active"
upgrade upgrade-running
grep -q 'restart pdm-agent.service' "$T/systemctl.log" ||
    fail "upgrade did not restart the running (disabled) unit: $(cat "$T/systemctl.log")"
ok "upgrade of a running but disabled unit: restarted"

# ---- remove: programs go, configuration and state stay ----
# as on a commissioned gateway: enabled and running
[ -z "$systemctl_real" ] || enable_unit enable
dpkg_run remove -r pdm-agent || fail "dpkg -r failed: $(tail -n 5 "$T/remove.log")"
grep -q 'stop pdm-agent.service' "$T/systemctl.log" || fail "remove did not stop the running unit"
rm -f "$T/active"
[ "$(dpkg-query -W -f='${db:Status-Status}' pdm-agent)" = config-files ] || fail "not in config-files state"
[ ! -e /usr/bin/pdm-agent ] && [ ! -e /lib/systemd/system/pdm-agent.service ] || fail "remove left the programs"
cmp -s $conf "$T/agent.conf.edited" || fail "remove changed or removed $conf"
[ -f /etc/pdm-agent/tls/device.key ] || fail "remove deleted the TLS files"
[ -s /var/lib/pdm-agent/pdm-agent.db ] || fail "remove deleted the store"
ok "remove: unit stopped, programs gone; configuration, TLS files and store kept"

# ---- purge: configuration and state go, the user stays ----
dpkg_run purge -P pdm-agent || fail "dpkg -P failed: $(tail -n 5 "$T/purge.log")"
installed=0
[ "$(dpkg-query -W -f='${db:Status-Status}' pdm-agent 2>/dev/null || echo not-installed)" = not-installed ] ||
    fail "pdm-agent is still known to dpkg after purge"
[ ! -e /etc/pdm-agent ] || fail "purge left /etc/pdm-agent: $(ls -A /etc/pdm-agent)"
[ ! -e /var/lib/pdm-agent ] || fail "purge left /var/lib/pdm-agent"
[ ! -e "$wants" ] && [ ! -L "$wants" ] || fail "purge left the enabled unit's link $wants"
getent passwd pdm-agent >/dev/null || fail "purge removed the system user (expected: kept)"
ok "purge: /etc/pdm-agent and /var/lib/pdm-agent gone; user pdm-agent kept (removed by this test)"
echo PASS
