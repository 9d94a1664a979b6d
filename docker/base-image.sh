#!/usr/bin/env bash
# Builds the base image of the polymr image (Debian with Python 3 and Node) from Debian's
# packages alone, for machines that reach no container registry:
#
#   debootstrap --variant=minbase --include=python3,nodejs,ca-certificates SUITE ROOTFS MIRROR
#   pip download orjson==ORJSON_VERSION (the wheel for the rootfs's CPython), unpacked into
#       ROOTFS/usr/lib/python3/dist-packages (Debian has no orjson package)
#   tar -C ROOTFS -c . | docker import - IMAGE
#
# Called by `make base-image`. Does nothing when IMAGE exists already with that orjson,
# unless FORCE=1. Needs root (debootstrap), installs debootstrap with apt-get when it is
# missing, takes the Debian mirror from this machine's apt sources unless MIRROR is given,
# and the wheel from PyPI with the host's pip (kept in WHEELS for the next build).
#
# Environment: BASE_IMAGE (default polymr-base:bookworm), SUITE (bookworm),
# ROOTFS (target/base-image/rootfs), MIRROR (from apt's sources), FORCE (unset),
# ORJSON_VERSION (3.13.0; empty: no orjson), WHEELS (target/base-image/wheels),
# PIP (python3 -m pip).
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-polymr-base:bookworm}
SUITE=${SUITE:-bookworm}
ROOTFS=${ROOTFS:-target/base-image/rootfs}
MIRROR=${MIRROR:-}
FORCE=${FORCE:-}
ORJSON_VERSION=${ORJSON_VERSION-3.13.0}
WHEELS=${WHEELS:-target/base-image/wheels}
PIP=${PIP:-python3 -m pip}
PACKAGES=python3,nodejs,ca-certificates

say() { echo "base-image: $*" >&2; }
die() { say "$*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed"
if [ "$FORCE" != 1 ] && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    # An image from before orjson was added is rebuilt once.
    if [ -z "$ORJSON_VERSION" ] || docker run --rm --entrypoint python3 "$BASE_IMAGE" -c \
            "import orjson, sys; sys.exit(orjson.__version__ != '$ORJSON_VERSION')" >/dev/null 2>&1; then
        say "$BASE_IMAGE exists (FORCE=1 rebuilds it)"
        exit 0
    fi
    say "$BASE_IMAGE exists without orjson $ORJSON_VERSION: rebuilding it"
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"
else die "debootstrap needs root: run as root or install sudo"; fi

if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
    command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it"
    say "installing debootstrap"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap \
        || { $SUDO apt-get update &&
             $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap; } \
        || die "could not install debootstrap"
fi
DEBOOTSTRAP=$(command -v debootstrap || echo /usr/sbin/debootstrap)

# The Debian mirror apt uses for SUITE's main component: one-line sources
# (`deb [opts] URI SUITE COMPONENT...`) and deb822 ones (Types/URIs/Suites/Components).
find_mirror() {
    local files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && files+=("$f")
    done
    [ ${#files[@]} -gt 0 ] || return 0
    awk -v suite="$SUITE" '
        function has(list, word,   n, a, i) {
            n = split(list, a, /[ \t]+/)
            for (i = 1; i <= n; i++) if (a[i] == word) return 1
            return 0
        }
        function flush(   n, u, i) {
            if (types != "" && has(types, "deb") && has(suites, suite) && has(comps, "main") &&
                enabled != "no") {
                n = split(uris, u, /[ \t]+/)
                for (i = 1; i <= n; i++) if (u[i] != "") { print u[i]; break }
            }
            types = uris = suites = comps = ""; enabled = "yes"
        }
        FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
        /^[ \t]*#/ { next }
        deb822 && /^[ \t]*$/ { flush(); next }
        deb822 {
            line = $0; key = tolower(line); sub(/:.*/, "", key); sub(/^[^:]*:[ \t]*/, "", line)
            if (key == "types") types = line
            else if (key == "uris") uris = line
            else if (key == "suites") suites = line
            else if (key == "components") comps = line
            else if (key == "enabled") enabled = tolower(line)
            next
        }
        $1 == "deb" {
            line = $0; sub(/^[ \t]*deb[ \t]+/, "", line); sub(/^\[[^]]*\][ \t]*/, "", line)
            n = split(line, f, /[ \t]+/)
            if (n >= 3 && f[2] == suite) for (i = 3; i <= n; i++) if (f[i] == "main") { print f[1]; break }
        }
        END { flush() }
    ' "${files[@]}" | head -n 1
}

if [ -z "$MIRROR" ]; then
    MIRROR=$(find_mirror)
    if [ -z "$MIRROR" ]; then
        MIRROR=http://deb.debian.org/debian
        say "no apt source for $SUITE main found; using $MIRROR"
    fi
fi

say "debootstrap $SUITE from $MIRROR into $ROOTFS (packages: $PACKAGES)"
start=$(date +%s)
$SUDO rm -rf "$ROOTFS"
mkdir -p "$(dirname "$ROOTFS")"
if ! $SUDO "$DEBOOTSTRAP" --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
        >"$ROOTFS.log" 2>&1; then
    tail -n 30 "$ROOTFS.log" >&2
    [ -f "$ROOTFS/debootstrap/debootstrap.log" ] && tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (full log: $ROOTFS.log)"
fi

# orjson, which the Python helper parses JSON with when it is importable: the manylinux wheel
# for the rootfs's CPython and this machine's architecture, unpacked where Debian's python3
# looks (a wheel is a zip of the package and its metadata; nothing to compile or run).
if [ -n "$ORJSON_VERSION" ]; then
    py=$(basename "$(readlink -f "$ROOTFS/usr/bin/python3")")    # python3.11
    pyver=${py#python}
    case "$pyver" in 3.[0-9]*) ;; *) die "cannot tell the rootfs's Python version (got '$py')" ;; esac
    arch=$(uname -m)
    mkdir -p "$WHEELS"
    wheel=$(ls "$WHEELS"/orjson-"$ORJSON_VERSION"-cp"${pyver/./}"-*manylinux*"$arch"*.whl 2>/dev/null | head -n 1 || true)
    if [ -z "$wheel" ]; then
        say "downloading orjson $ORJSON_VERSION for CPython $pyver ($arch) from PyPI"
        $PIP download --quiet --no-deps --only-binary=:all: --implementation cp \
            --python-version "$pyver" --platform "manylinux_2_17_$arch" \
            --dest "$WHEELS" "orjson==$ORJSON_VERSION" \
            || die "could not download the orjson $ORJSON_VERSION wheel (ORJSON_VERSION= builds without it)"
        wheel=$(ls "$WHEELS"/orjson-"$ORJSON_VERSION"-cp"${pyver/./}"-*manylinux*"$arch"*.whl | head -n 1)
    fi
    site="$ROOTFS/usr/lib/python3/dist-packages"
    say "installing $(basename "$wheel") into $site"
    $SUDO mkdir -p "$site"
    $SUDO python3 -m zipfile -e "$wheel" "$site" || die "could not unpack $wheel"
    $SUDO chmod -R a+rX "$site"
    $SUDO chroot "$ROOTFS" /usr/bin/python3 -c \
        "import orjson, sys; sys.exit(orjson.__version__ != '$ORJSON_VERSION')" \
        || die "orjson $ORJSON_VERSION does not import in the image's Python"
fi

# What a runtime image does not need: downloaded packages, package lists, docs.
$SUDO rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/*

say "importing $ROOTFS as $BASE_IMAGE"
$SUDO tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$PACKAGES $SUITE $MIRROR" \
    - "$BASE_IMAGE" >/dev/null
$SUDO rm -rf "$ROOTFS"
say "built $BASE_IMAGE in $(( $(date +%s) - start )) s"
