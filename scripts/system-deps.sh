#!/usr/bin/env bash
# The system packages Descent Lab needs on Debian/Ubuntu: the one list, used by .ci/run (all of
# them), `make run` (python3-venv when `python3 -m venv` fails, Makefile) and app/shell/preflight.py
# (the libraries Qt's xcb platform plugin misses, found with ldd, mapped to packages by the
# table below).
#
#   scripts/system-deps.sh table            the table: "<package> <check>" per line
#   scripts/system-deps.sh missing          the packages of the table this machine lacks
#   scripts/system-deps.sh install [PKG...] install the missing ones (or just PKG..., each must be
#                                           in the table): as root with apt-get; otherwise print
#                                           the apt-get line to run and exit 1
set -euo pipefail

# <package>           <check>: how to tell it is there
#   cmd:NAME            a command on PATH
#   -                   the package is installed (dpkg)
#   LIB[,LIB...]        shared libraries as `ldd` names them (sonames): all known to ldconfig.
#                       app/shell/preflight.py maps a soname ldd reports "not found" to its package here.
TABLE='
gcc                   cmd:cc
libc6-dev             cmd:cc
python3-venv          -
xvfb                  cmd:Xvfb
xauth                 cmd:xauth
libgl1-mesa-dri       -
libegl1               libEGL.so.1
libgl1                libGL.so.1
libfontconfig1        libfontconfig.so.1
libfreetype6          libfreetype.so.6
libdbus-1-3           libdbus-1.so.3
libglib2.0-0          libglib-2.0.so.0,libgthread-2.0.so.0
libx11-6              libX11.so.6
libx11-xcb1           libX11-xcb.so.1
libxkbcommon0         libxkbcommon.so.0
libxkbcommon-x11-0    libxkbcommon-x11.so.0
libxcb1               libxcb.so.1
libxcb-cursor0        libxcb-cursor.so.0
libxcb-icccm4         libxcb-icccm.so.4
libxcb-image0         libxcb-image.so.0
libxcb-keysyms1       libxcb-keysyms.so.1
libxcb-randr0         libxcb-randr.so.0
libxcb-render0        libxcb-render.so.0
libxcb-render-util0   libxcb-render-util.so.0
libxcb-shape0         libxcb-shape.so.0
libxcb-shm0           libxcb-shm.so.0
libxcb-sync1          libxcb-sync.so.1
libxcb-util1          libxcb-util.so.1
libxcb-xfixes0        libxcb-xfixes.so.0
libxcb-xinerama0      libxcb-xinerama.so.0
libxcb-xkb1           libxcb-xkb.so.1
libzstd1              libzstd.so.1
zlib1g                libz.so.1
libstdc++6            libstdc++.so.6
libgcc-s1             libgcc_s.so.1
'

rows() { printf '%s\n' "$TABLE" | awk 'NF == 2 { print $1, $2 }'; }

present() {  # present CHECK PACKAGE
    local check=$1 package=$2 lib known
    case "$check" in
        cmd:*) command -v "${check#cmd:}" >/dev/null 2>&1 ;;
        -) dpkg -s "$package" >/dev/null 2>&1 ;;
        *)
            known=$(ldconfig -p 2>/dev/null || true)
            for lib in ${check//,/ }; do
                awk -v l="$lib" '$1 == l { f = 1 } END { exit !f }' <<<"$known" || return 1
            done
            ;;
    esac
}

missing() {
    local package check
    while read -r package check; do
        present "$check" "$package" || echo "$package"
    done < <(rows)
}

install() {
    local wanted=() package
    if [ "$#" -eq 0 ]; then
        mapfile -t wanted < <(missing)
    else
        for package in "$@"; do
            rows | awk -v p="$package" '$1 == p { found = 1 } END { exit !found }' || {
                echo "system-deps.sh: $package is not in the list (scripts/system-deps.sh table)" >&2
                exit 2
            }
            wanted+=("$package")
        done
    fi
    [ "${#wanted[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            echo "descent-lab needs system packages; install them with:" \
                 "sudo apt-get install -y ${wanted[*]}" >&2
        else
            echo "descent-lab needs these Debian/Ubuntu packages (or your system's equivalent):" \
                 "${wanted[*]}" >&2
        fi
        exit 1
    fi
    echo "installing system packages: ${wanted[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}"
}

case "${1:-}" in
    table) rows ;;
    missing) missing ;;
    install) shift; install "$@" ;;
    *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
