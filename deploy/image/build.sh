#!/usr/bin/env bash
# make image: the gateway's OCI image, built here without a Docker engine and without Docker Hub.
#
#   layer 1  Debian bookworm's minbase set (what debian:bookworm-slim holds) + deploy/image/packages, made by
#            mmdebstrap from Debian's mirror, then `install.sh system` (user 10001, /var/lib/tenx-gateway)
#   layer 2  the dependencies' wheels (`pip wheel` of the package, with constraints.txt when there is one)
#   layer 3  tenx-gateway's own wheel, /app/gunicorn.conf.py and /app/wsgi.py
#   config   ENV, USER, WORKDIR, EXPOSE and CMD of the Dockerfile's final stage (deploy/image/dockerfile.py), and
#            the OCI labels and annotations version, revision, created, source, licenses
#
# The layers are made by umoci from directories whose files' times are clamped to a SOURCE_DATE_EPOCH of their
# own inputs (the last commit that changed them), so the same inputs give the same layer digests. Each step is
# cached under $IMAGE_DIR (default build/image, git-ignored) by a hash of its inputs and done again only when
# they change. The result: the OCI layout $IMAGE_DIR/oci with the tags <version>-<commit> and dev, described in
# $IMAGE_DIR/image.env; the last line printed is the image's name.
#
# Usage: deploy/image/build.sh          (root: mmdebstrap, chroot and umoci need it; CI and `make` run as root)
# Env:   IMAGE_NAME (registry.local/tenx-gateway), IMAGE_DIR, IMAGE_CONSTRAINTS (constraints.txt), IMAGE_SOURCE
#        (the org.opencontainers.image.source; default: the origin remote's URL), PYTHON (python3, a 3.11)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
OUT="${IMAGE_DIR:-$ROOT/build/image}"
NAME="${IMAGE_NAME:-registry.local/tenx-gateway}"
CONSTRAINTS="${IMAGE_CONSTRAINTS:-$ROOT/constraints.txt}"
PYTHON="${PYTHON:-python3}"
SUITE=bookworm
ARCH=amd64
MIRRORS=("deb http://deb.debian.org/debian $SUITE main"
         "deb http://deb.debian.org/debian $SUITE-updates main"
         "deb http://deb.debian.org/debian-security $SUITE-security main")
# what the wheel is built from: the same files the Dockerfile's builder stage copies
WHEEL_SOURCES=(pyproject.toml setup.cfg LICENSE README.md gateway)
APP_FILES=(gunicorn.conf.py wsgi.py)

log() { printf '%s [image] %s\n' "$(date -u +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
hash_stdin() { sha256sum | cut -c1-16; }
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

# ------------------------------------------------------------------ tools
need_tools() {
  [ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, chroot and umoci unpack keep files' owners)"
  local missing=()
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  command -v umoci >/dev/null || missing+=(umoci)
  command -v unshare >/dev/null || missing+=(util-linux)
  [ ${#missing[@]} -eq 0 ] || "$ROOT/scripts/apt-install.sh" image "${missing[@]}"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || die "$PYTHON is not Python 3.11 (the image's python3.11 must be able to install the wheels it builds)"
}

# ------------------------------------------------------------------ inputs
# SOURCE_DATE_EPOCH of a step: the time of the last commit that changed its inputs (HEAD's when none did, e.g.
# files not committed yet)
epoch_of() {
  local t
  t="$(git -C "$ROOT" log -1 --format=%ct -- "$@" 2>/dev/null || true)"
  [ -n "$t" ] || t="$(git -C "$ROOT" log -1 --format=%ct)"
  echo "$t"
}

# a hash of files' names and contents (directories: every file in them that git does not ignore)
hash_files() {
  (cd "$ROOT" && git ls-files -co --exclude-standard -z -- "$@" | sort -z | xargs -0 sha256sum) | hash_stdin
}

# ------------------------------------------------------------------ steps
# Each step's result is a directory: oci/ (an OCI layout, tag "image", its layers so far) and bundle/ (what
# `umoci unpack` would make of it: rootfs/ and umoci's metadata, whose mtree lets repack find what changed). The
# next step mounts an overlay of its own over the previous rootfs (the previous steps' upper/ directories and
# the base's rootfs as its lower layers), works in it, and repacks: nothing is unpacked or copied again.

# every file changed since the marker $2 gets the time $3, so that the layer umoci makes of them depends on what
# they hold, not on when they were made (mtree compares times, so an untouched file keeps its own and stays out)
clamp_since() {
  local rootfs="$1" marker="$2" epoch="$3"
  find "$rootfs" -newer "$marker" -exec touch --no-dereference --date="@$epoch" {} +
}

repack() {  # LAYOUT BUNDLE EPOCH WHAT
  umoci repack --refresh-bundle --image "$1:image" --history.created "$(iso "$3")" --history.created_by "$4" "$2"
}

# layer 1: Debian bookworm's minbase set and deploy/image/packages, then `install.sh system`
build_base() {  # DIR EPOCH
  local dir="$1" epoch="$2" packages marker
  packages="$(sed -e 's/#.*//' "$HERE/packages" | xargs | tr ' ' ,)"
  umoci init --layout "$dir/oci"
  umoci new --image "$dir/oci:image"
  umoci unpack --image "$dir/oci:image" "$dir/bundle" >/dev/null
  marker="$(mktemp "$OUT/.marker.XXXXXX")"
  touch --date="@$epoch" "$marker"
  # mmdebstrap's mounts (/dev, /proc, /sys in the chroot) live in a namespace of their own, gone when it ends.
  # merged-usr: /bin, /lib... made symlinks to /usr/... up front and usr-is-merged installed, as debootstrap does
  # for bookworm (debian:bookworm-slim); otherwise apt picks usrmerge, whose conversion brings perl (47 MB).
  SOURCE_DATE_EPOCH="$epoch" unshare --mount --propagation private --fork -- \
    mmdebstrap --mode=root --variant=minbase --arch="$ARCH" --include="$packages" \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt="$HERE/dpkg-excludes" \
      --customize-hook="copy-in $HERE/install.sh $HERE/packages /tmp" \
      --customize-hook='chroot "$1" sh /tmp/install.sh system /tmp/packages' \
      --customize-hook='mv "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$1/etc/dpkg/dpkg.cfg.d/tenx-gateway-excludes"' \
      --customize-hook=': > "$1/etc/resolv.conf"; : > "$1/etc/hostname"' \
      --quiet "$SUITE" "$dir/bundle/rootfs" "${MIRRORS[@]}"
  # the runtime mounts /dev, /proc and /sys; the device nodes mmdebstrap made are not the image's
  find "$dir/bundle/rootfs/dev" -mindepth 1 -delete
  clamp_since "$dir/bundle/rootfs" "$marker" "$epoch"
  repack "$dir/oci" "$dir/bundle" "$epoch" \
    "mmdebstrap --variant=minbase $SUITE + deploy/image/packages; install.sh system"
}

# the wheels of the package's dependencies, and pip's own (install.sh runs pip from it)
build_wheels() {  # DIR EPOCH SRC
  local dir="$1" epoch="$2" src="$3" args=()
  [ -f "$CONSTRAINTS" ] && args+=(--constraint "$CONSTRAINTS")
  SOURCE_DATE_EPOCH="$epoch" "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$dir" \
    "${args[@]}" "$src" pip
  rm -f "$dir"/tenx_gateway-*.whl
}

# A layer made by `install.sh python STAGE deps|app` run in a chroot of the previous step's rootfs, with STAGE (the
# wheels and install.sh) mounted read-only at /mnt, then FILES (SRC:DEST pairs) copied in. Everything is mounted
# in a private mount namespace: nothing is mounted on the host, and it all goes when the step ends.
build_python_layer() {  # PREV DIR STAGE EPOCH deps|app LOWERS [SRC:DEST...]
  local prev="$1" dir="$2" stage="$3" epoch="$4" which="$5" lowers="$6" marker; shift 6
  cp -a "$prev/oci" "$dir/oci"
  mkdir -p "$dir/bundle/rootfs" "$dir/upper" "$dir/work"
  find "$prev/bundle" -maxdepth 1 -type f -exec cp -a {} "$dir/bundle/" \;
  # the overlay's root is the upper directory: the same time as the base's root, or "/" would look changed
  touch --reference="${lowers##*:}" "$dir/upper"
  marker="$(mktemp "$OUT/.marker.XXXXXX")"
  unshare --mount --propagation private --fork -- bash -euo pipefail -c '
    dir="$1" lowers="$2" stage="$3" epoch="$4" which="$5" marker="$6" created="$7" by="$8"; shift 8
    r="$dir/bundle/rootfs"
    mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$dir/upper,workdir=$dir/work" "$r"
    mount --bind -o ro "$stage" "$r/mnt"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"   # pip'"'"'s temporary files, not the image'"'"'s
    chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      LANG=C.UTF-8 SOURCE_DATE_EPOCH="$epoch" sh /mnt/install.sh python /mnt "$which"
    umount "$r/tmp"; umount -R "$r/dev"; umount "$r/mnt"
    for pair in "$@"; do install -D -m 0644 "${pair%%:*}" "$r/${pair#*:}"; done
    find "$r" -xdev -newer "$marker" -exec touch --no-dereference --date="@$epoch" {} +
    umoci repack --refresh-bundle --image "$dir/oci:image" --history.created "$created" --history.created_by "$by" \
      "$dir/bundle"
  ' build_python_layer "$dir" "$lowers" "$stage" "$epoch" "$which" "$marker" "$(iso "$epoch")" \
    "install.sh python WHEELS $which${*:+; $*}" "$@"
  rmdir "$dir/work/work" "$dir/work" 2>/dev/null || true
}

# ------------------------------------------------------------------ config
# umoci config arguments: the Dockerfile's final stage (ENV, USER, WORKDIR, EXPOSE, ENTRYPOINT, CMD, and LABEL,
# also as manifest annotations, with its ARGs given here as NAME=VALUE: VERSION, REVISION, CREATED, SOURCE)
config_args() {  # NAME=VALUE...
  "$PYTHON" - "$ROOT/Dockerfile" "$@" <<'EOF'
import importlib.util, string, sys
spec = importlib.util.spec_from_file_location("dockerfile", sys.argv[1].rsplit("/", 1)[0] + "/deploy/image/dockerfile.py")
dockerfile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dockerfile)
config = dockerfile.image_config(dockerfile.parse(open(sys.argv[1]).read()))
build_args = dict(arg.split("=", 1) for arg in sys.argv[2:])
args = ["--clear=config.env", "--clear=config.labels", "--clear=config.exposedports", "--clear=config.cmd",
        "--clear=config.entrypoint", "--clear=manifest.annotations"]
args += [f"--config.env={k}={v}" for k, v in config["env"].items()]
args += [f"--config.exposedports={p if '/' in p else p + '/tcp'}" for p in config["expose"]]
if config["user"]:
    args.append(f"--config.user={config['user']}")
if config["workdir"]:
    args.append(f"--config.workingdir={config['workdir']}")
for key in ("entrypoint", "cmd"):
    args += [f"--config.{key}={word}" for word in config[key] or []]
for key, value in config["labels"].items():
    value = string.Template(value).substitute(build_args)  # a label naming an ARG not given here is an error
    args += [f"--config.label={key}={value}", f"--manifest.annotation={key}={value}"]
print("\0".join(args), end="")
EOF
}

# ------------------------------------------------------------------ main
# What the image is built from, and when: the commit, its version, and each step's SOURCE_DATE_EPOCH.
read_inputs() {
  VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/gateway/version.py")"  # its one source
  COMMIT="$(git -C "$ROOT" rev-parse HEAD)"
  # uncommitted changes to what goes into the image: the tag and the revision say so
  DIRTY=""
  [ -z "$(git -C "$ROOT" status --porcelain -- "${WHEEL_SOURCES[@]}" "${APP_FILES[@]}" Dockerfile deploy/image \
          "$(basename "$CONSTRAINTS")")" ] || DIRTY=-dirty
  TAG="$VERSION-$(git -C "$ROOT" rev-parse --short=12 HEAD)$DIRTY"
  SOURCE="${IMAGE_SOURCE:-$(git -C "$ROOT" config --get remote.origin.url || echo unknown)}"
  BASE_EPOCH="$(epoch_of deploy/image/packages deploy/image/install.sh deploy/image/dpkg-excludes)"
  DEPS_EPOCH="$(epoch_of setup.cfg pyproject.toml "$(basename "$CONSTRAINTS")")"
  APP_EPOCH="$(git -C "$ROOT" log -1 --format=%ct)"
}

# Each step's directory is named by a hash of what its result depends on: its inputs, its epoch and its own code.
step_dirs() {
  local constraints=none key
  [ -f "$CONSTRAINTS" ] && constraints="$(sha256sum < "$CONSTRAINTS")"
  key="$( { declare -f build_base clamp_since repack; printf '%s\n' "$SUITE" "$ARCH" "${MIRRORS[@]}" "$BASE_EPOCH"
            cat "$HERE/packages" "$HERE/install.sh" "$HERE/dpkg-excludes"; } | hash_stdin)"
  BASE="$OUT/base-$key"
  key="$( { declare -f build_wheels; echo "$DEPS_EPOCH $constraints"
            "$PYTHON" -c 'import sys, sysconfig; print(sys.version_info[:2], sysconfig.get_platform())'
            cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml"; } | hash_stdin)"
  WHEELS="$OUT/wheels-$key"
  key="$( { declare -f build_python_layer; echo "$BASE $WHEELS $DEPS_EPOCH"; cat "$HERE/install.sh"; } | hash_stdin)"
  DEPS="$OUT/deps-$key"
  key="$( { echo "$DEPS $APP_EPOCH"; hash_files "${WHEEL_SOURCES[@]}" "${APP_FILES[@]}"; } | hash_stdin)"
  APP="$OUT/app-$key"
}

# a fresh copy of the wheel's sources, made once per run when a step needs it: setuptools builds in the source
# tree, and files an earlier build left in its build/ would go into the wheel
wheel_sources() {
  if [ -z "${SRC:-}" ]; then
    SRC="$(mktemp -d "$OUT/.src.XXXXXX")"
    (cd "$ROOT" && git ls-files -co --exclude-standard -z -- "${WHEEL_SOURCES[@]}" | xargs -0 cp --parents -t "$SRC")
  fi
}

build_steps() {
  local stage files=() f
  if [ ! -d "$BASE" ]; then
    log "layer 1: Debian $SUITE minbase + $(sed -e 's/#.*//' "$HERE/packages" | xargs) (mmdebstrap, SOURCE_DATE_EPOCH=$BASE_EPOCH)"
    mkdir -p "$BASE.tmp"; build_base "$BASE.tmp" "$BASE_EPOCH"; mv "$BASE.tmp" "$BASE"
  fi
  if [ ! -d "$WHEELS" ]; then
    log "wheels: pip wheel of the package's dependencies$([ -f "$CONSTRAINTS" ] && echo " with $(basename "$CONSTRAINTS")")"
    wheel_sources
    mkdir -p "$WHEELS.tmp"; build_wheels "$WHEELS.tmp" "$DEPS_EPOCH" "$SRC"; mv "$WHEELS.tmp" "$WHEELS"
  fi
  if [ ! -d "$DEPS" ]; then
    log "layer 2: the dependencies ($(ls "$WHEELS" | grep -cv '^pip-') wheels)"
    stage="$(mktemp -d "$OUT/.stage.XXXXXX")"
    cp -l "$WHEELS"/*.whl "$stage/"; cp "$HERE/install.sh" "$stage/"
    mkdir -p "$DEPS.tmp"
    build_python_layer "$BASE" "$DEPS.tmp" "$stage" "$DEPS_EPOCH" deps "$BASE/bundle/rootfs"
    mv "$DEPS.tmp" "$DEPS"
  fi
  if [ ! -d "$APP" ]; then
    log "layer 3: tenx-gateway $VERSION and /app"
    wheel_sources
    stage="$(mktemp -d "$OUT/.stage.XXXXXX")"
    SOURCE_DATE_EPOCH="$APP_EPOCH" "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps \
      --wheel-dir "$stage" "$SRC"
    cp "$WHEELS"/pip-*.whl "$HERE/install.sh" "$stage/"
    for f in "${APP_FILES[@]}"; do files+=("$ROOT/$f:app/$f"); done
    mkdir -p "$APP.tmp"
    build_python_layer "$DEPS" "$APP.tmp" "$stage" "$APP_EPOCH" app "$DEPS/upper:$BASE/bundle/rootfs" "${files[@]}"
    rm -rf "$APP.tmp/bundle" "$APP.tmp/upper"   # nothing builds on this step: its layout is enough
    mv "$APP.tmp" "$APP"
  fi
  # only the current result of each step is kept
  for f in "$OUT"/base-* "$OUT"/wheels-* "$OUT"/deps-* "$OUT"/app-*; do
    case "$f" in "$BASE"|"$WHEELS"|"$DEPS"|"$APP") ;; *) rm -rf "$f" ;; esac
  done
}

# $OUT/oci: the last step's layout with the image's config, tagged $TAG and dev, and nothing else
finish_image() {
  local created config=() key
  created="$(iso "$APP_EPOCH")"
  mapfile -d '' config < <(config_args VERSION="$VERSION" REVISION="$COMMIT$DIRTY" CREATED="$created" SOURCE="$SOURCE")
  key="$( { echo "$APP $TAG"; printf '%s\n' "${config[@]}"; } | hash_stdin)"
  [ "$(cat "$OUT/oci/.key" 2>/dev/null)" != "$key" ] || return 0
  cp -a "$APP/oci" "$OUT/oci.tmp"
  umoci config --image "$OUT/oci.tmp:image" --tag "$TAG" --no-history --os linux --architecture "$ARCH" \
    --created "$created" --author tenx-gateway "${config[@]}"
  umoci tag --image "$OUT/oci.tmp:$TAG" dev
  umoci ls --layout "$OUT/oci.tmp" | grep -vxF -e "$TAG" -e dev | while read -r t; do
    umoci rm --image "$OUT/oci.tmp:$t"
  done
  umoci gc --layout "$OUT/oci.tmp"
  echo "$key" > "$OUT/oci.tmp/.key"
  rm -rf "$OUT/oci"; mv "$OUT/oci.tmp" "$OUT/oci"
}

main() {
  need_tools
  mkdir -p "$OUT"
  exec 9> "$OUT/.lock"
  flock 9
  trap 'rm -rf "$OUT"/.src.* "$OUT"/.stage.* "$OUT"/.marker.* "$OUT"/*.tmp' EXIT
  rm -rf "$OUT"/*.tmp   # what a build that was stopped left
  read_inputs
  step_dirs
  build_steps
  finish_image
  local digest
  digest="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' \
            "$OUT/oci/index.json")"
  cat > "$OUT/image.env" <<EOF
IMAGE_LAYOUT=$OUT/oci
IMAGE_NAME=$NAME
IMAGE_TAG=$TAG
IMAGE_DIGEST=$digest
IMAGE_REVISION=$COMMIT$DIRTY
EOF
  log "built $NAME:$TAG (and :dev), manifest $digest, layout $OUT/oci"
  echo "$NAME:$TAG"
}

main "$@"
