#!/usr/bin/env bash
# Build every deployable's container image from infra/docker/*.Dockerfile with buildah (no Docker
# engine needed), on a local base equivalent to python:3.11-slim, then report each image's build
# time and size and the Python packages inside it.
#
# Usage: bash infra/local/images.sh [--no-cache] [NAME...]   (NAME: job producer status
#        dispatcher blueprint; default all). --no-cache rebuilds every layer (a cold build); the
#        base image is kept either way (delete CHOREO_IMAGES_DIR to start from nothing).
# Needs root (buildah's chroot isolation, debootstrap) and Debian's package mirror; installs
# buildah and debootstrap with apt-get when they are missing. Everything it keeps (the base's
# root file system, buildah's storage and its driver, the reports) is under CHOREO_IMAGES_DIR
# (default /var/tmp/choreo-images). Reports: $CHOREO_IMAGES_DIR/report/<name>.packages (pip freeze
# inside the image) and $CHOREO_IMAGES_DIR/report/images.tsv (name, seconds, bytes, cache).
# Production builds keep the official base: the Dockerfiles' FROM is replaced only here
# (buildah bud --from). docs/DEPLOY.md#building-the-images-locally-buildah describes it.
set -euo pipefail
cd "$(dirname "$0")/../.."

ALL=(job producer status dispatcher blueprint)
DIR=${CHOREO_IMAGES_DIR:-/var/tmp/choreo-images}
# Bump when the base recipe below changes: the tag names the recipe, so a stale base is not reused.
BASE_RECIPE=3
BASE_IMAGE=localhost/choreo-base:python3.11-bookworm-r$BASE_RECIPE
MIRROR=http://deb.debian.org/debian

die() { echo "images.sh: $*" >&2; exit 1; }
say() { echo "== $*"; }

no_cache=()
names=()
for arg in "$@"; do
  case $arg in
    --no-cache) no_cache=(--no-cache) ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $arg (known: --no-cache)" ;;
    *)
      [[ -f infra/docker/$arg.Dockerfile ]] \
        || die "no image named '$arg' (known: ${ALL[*]}; each is infra/docker/NAME.Dockerfile)"
      names+=("$arg") ;;
  esac
done
((${#names[@]})) || names=("${ALL[@]}")

[[ $(id -u) -eq 0 ]] || die "needs root: buildah's chroot isolation and debootstrap run as root"
[[ $DIR == /* ]] || die "CHOREO_IMAGES_DIR must be an absolute path (got '$DIR')"
mkdir -p "$DIR/report" || die "cannot create CHOREO_IMAGES_DIR '$DIR'"

need_apt=()
command -v buildah >/dev/null 2>&1 || need_apt+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
if ((${#need_apt[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${need_apt[*]} and no apt-get to install them"
  say "installing ${need_apt[*]} from Debian"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need_apt[@]}" >"$DIR/report/apt.log" 2>&1 \
    || die "apt-get install ${need_apt[*]} failed (log: $DIR/report/apt.log)"
fi

# One storage for everything this script builds, so the tests find the images (CHOREO_IMAGES_DIR).
# overlay when the kernel lets us mount it: vfs copies the whole file system at every layer (the
# job image took 16 GB of disk and 166 s that way, the blueprint image would take tens of GB).
# The choice is written beside the storage; tests/fixtures/images.py reads it.
if [[ -f $DIR/storage-driver ]]; then
  DRIVER=$(cat "$DIR/storage-driver")
else
  probe=$(mktemp -d "$DIR/overlay-probe.XXXXXX")
  mkdir -p "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    DRIVER=overlay
  else
    DRIVER=vfs
  fi
  rm -rf "$probe"
  echo "$DRIVER" >"$DIR/storage-driver"
fi
bah() { buildah --root "$DIR/storage" --runroot "$DIR/run" --storage-driver "$DRIVER" "$@"; }

image_exists() { bah inspect --type image "$1" >/dev/null 2>&1; }

make_base() {
  local rootfs=$DIR/base/rootfs started=$SECONDS
  if [[ ! -f $DIR/base/rootfs.done ]]; then
    say "base: debootstrap a minimal Debian bookworm with python3.11 into $rootfs (a few minutes)"
    rm -rf "$rootfs" "$DIR/base/rootfs.done"
    mkdir -p "$DIR/base"
    nice -n 10 debootstrap --variant=minbase --include=python3.11,python3-pip,ca-certificates \
      bookworm "$rootfs" "$MIRROR" >"$DIR/base/debootstrap.log" 2>&1 \
      || die "debootstrap failed (log: $DIR/base/debootstrap.log; tail: $(tail -n 2 "$DIR/base/debootstrap.log" | tr '\n' ' '))"
    touch "$DIR/base/rootfs.done"
  fi
  say "base: making $BASE_IMAGE from $rootfs"
  local ctr mnt
  ctr=$(bah from scratch)
  mnt=$(bah mount "$ctr")
  cp -a "$rootfs/." "$mnt/"
  # What python:3.11-slim has on top of Debian: `python` and `pip` on PATH, pip allowed to install
  # system-wide (no PEP 668 marker), the same apt sources, and debian:*-slim's dpkg excludes
  # (no documentation, manual pages or translations) and its apt clean-up.
  cat >"$mnt/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  cat >"$mnt/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  # debian:*-slim's apt clean-up (the docker-clean file of Debian's official images): apt keeps no
  # downloaded .deb nor its package caches, so an `apt-get install` in a Dockerfile leaves none in
  # its layer. Without it the job image carried 202 MB of FFmpeg's .debs and apt caches.
  cat >"$mnt/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  ln -sf /usr/bin/python3.11 "$mnt/usr/local/bin/python"
  ln -sf /usr/bin/python3.11 "$mnt/usr/local/bin/python3"
  ln -sf /usr/bin/pip3 "$mnt/usr/local/bin/pip"
  rm -f "$mnt"/usr/lib/python3*/EXTERNALLY-MANAGED
  # The host's own certificate authorities (a TLS-intercepting proxy's, say): pip inside a build
  # reaches PyPI through the same network as the host.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$mnt/usr/local/share/ca-certificates/"
    chroot "$mnt" update-ca-certificates >/dev/null 2>&1 \
      || die "base: update-ca-certificates failed inside the base"
  fi
  find "$mnt/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$mnt"/usr/share/{man,info,locale,groff,lintian}/* "$mnt"/var/lib/apt/lists/* \
    "$mnt"/var/cache/apt/*.bin "$mnt"/var/cache/apt/archives/*.deb
  bah umount "$ctr" >/dev/null
  bah config --env LANG=C.UTF-8 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd python3 --label choreo.base.recipe=$BASE_RECIPE "$ctr"
  bah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  # Only the container made for this check goes: others in the storage (a test's, a colleague's
  # experiment) stay. `rm --all` here removed every working container of the storage.
  local check
  check=$(bah from --pull=never --quiet "$BASE_IMAGE")
  bah run --isolation chroot "$check" -- python -m pip --version >/dev/null \
    || { bah rm "$check" >/dev/null; die "the base image's python cannot run pip"; }
  bah rm "$check" >/dev/null
  say "base: ready in $((SECONDS - started)) s"
}

if image_exists "$BASE_IMAGE"; then
  say "base: reusing $BASE_IMAGE"
else
  make_base
fi

human() { numfmt --to=iec --suffix=B "$1"; }

report=$DIR/report/images.tsv
[[ -f $report ]] || printf 'name\tseconds\tbytes\tcache\n' >"$report"
for name in "${names[@]}"; do
  tag=localhost/choreo-$name:local
  log=$DIR/report/$name.build.log
  say "$name: building $tag from infra/docker/$name.Dockerfile (log: $log)"
  started=$(date +%s%N)
  # --layers caches every step, so an unchanged rebuild reuses them; --no-cache (a cold build)
  # runs each step again. The progress of the build goes to the log, one STEP line per layer.
  if ! nice -n 10 buildah --root "$DIR/storage" --runroot "$DIR/run" --storage-driver "$DRIVER" \
      bud --isolation chroot --layers "${no_cache[@]}" --pull=never --from "$BASE_IMAGE" \
      -f "infra/docker/$name.Dockerfile" -t "$tag" . >"$log" 2>&1; then
    echo "images.sh: $name: the build failed; the end of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
  seconds=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  # The size is that of the image's whole file system (what `docker images` shows, uncompressed).
  ctr=$(bah from --pull=never --quiet "$tag")
  bytes=$(du -sbx "$(bah mount "$ctr")" | cut -f1)
  bah umount "$ctr" >/dev/null
  bah run --isolation chroot "$ctr" -- python -m pip freeze --all >"$DIR/report/$name.packages" \
    || die "$name: pip freeze inside the image failed"
  bah rm "$ctr" >/dev/null
  cache=$([[ ${#no_cache[@]} -gt 0 ]] && echo no-cache || echo layers)
  printf '%s\t%s\t%s\t%s\n' "$name" "$seconds" "$bytes" "$cache" >>"$report"
  printf '== %s: built in %s s (%s), %s, %d Python packages: %s\n' "$name" "$seconds" "$cache" \
    "$(human "$bytes")" "$(wc -l <"$DIR/report/$name.packages")" \
    "$(cut -d= -f1 "$DIR/report/$name.packages" | tr '\n' ' ')"
done
# A rebuilt image leaves its previous version and the layers only it used without a name or a
# child: drop them, so the storage does not grow with every change (measured: 4.9 GB -> 2.4 GB,
# and an unchanged rebuild still hits every cached layer).
# One still used by a working container (a test's, a colleague's experiment) stays: buildah then
# exits non-zero after removing the rest, and the builds, which succeeded, are not failed for it
# (set -e had ended the script here without a word).
if pruned=$(bah rmi --prune 2>"$DIR/report/prune.log" | wc -l); then
  say "removed $pruned superseded image layers"
else
  say "removed $pruned superseded image layers; buildah could not remove" \
    "$(grep -c '^[[:space:]]*\* ' "$DIR/report/prune.log") (in use by a working container, or" \
    "see $DIR/report/prune.log)"
fi
say "images ready in $DIR/storage (buildah --root $DIR/storage --runroot $DIR/run --storage-driver $DRIVER images)"
