#!/usr/bin/env bash
# Obtain the testbed's control-plane binaries offline and cache them outside the repository.
#
#   kube-apiserver, kube-controller-manager, kube-scheduler  built from Debian bookworm's
#                                                              `kubernetes` source package (1.20.2)
#   etcd, etcdctl                                             from Debian's etcd-server/etcd-client
#
# Everything comes from Debian's archive; every download is checked against a sha256 recorded
# here. A finished build writes $BIN/SHA256SUMS; later runs verify the binaries against it and
# rebuild only when something is missing or altered.
set -euo pipefail

CACHE="${MLOPS_TESTBED_CACHE:-$HOME/.cache/mlops-testbed}"
BIN="$CACHE/bin"
WORK="$CACHE/build"
KUBE_VERSION="v1.20.2"
KUBE_SRC_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
# sha256 of the files of Debian's source package (also checked by apt against the signed index).
KUBE_ORIG_SHA256="b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc"
KUBE_DSC_SHA256="19fa1da5aefcef673894ac9511986bd98a14410cf8eea0b626613c30df435257"
WANT=(kube-apiserver kube-controller-manager kube-scheduler etcd etcdctl)

log() { printf '[testbed-build] %s\n' "$*" >&2; }

verify_cached() {
  [[ -f "$BIN/SHA256SUMS" ]] || return 1
  for b in "${WANT[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
  (cd "$BIN" && sha256sum --quiet -c SHA256SUMS) >/dev/null 2>&1
}

if verify_cached; then
  log "cached binaries verified in $BIN"
  exit 0
fi

mkdir -p "$BIN" "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/debs"
# A scratch apt configuration: the system's own source lists stay untouched.
cat >"$WORK/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
EOF
cat >"$WORK/apt/apt.conf" <<EOF
Dir::Etc::SourceList "$WORK/apt/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::State::Lists "$WORK/apt/lists";
Dir::Cache "$WORK/apt/cache";
APT::Sandbox::User "root";
EOF
export APT_CONFIG="$WORK/apt/apt.conf"
log "refreshing a scratch apt index"
apt-get -q update >/dev/null

if ! command -v rsync >/dev/null 2>&1; then
  log "installing rsync (the kubernetes make build needs it)"
  if [[ $(id -u) -eq 0 ]]; then
    (unset APT_CONFIG; apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -q install -y rsync >/dev/null)
  else
    log "rsync is missing and this is not root: install rsync and retry"; exit 1
  fi
fi

# --- etcd --------------------------------------------------------------------------------
log "fetching etcd from Debian"
(cd "$WORK/debs" && apt-get -q download etcd-server etcd-client >/dev/null)
rm -rf "$WORK/etcd-root" && mkdir -p "$WORK/etcd-root"
for deb in "$WORK"/debs/etcd-server_*.deb "$WORK"/debs/etcd-client_*.deb; do dpkg-deb -x "$deb" "$WORK/etcd-root"; done
install -m 0755 "$WORK/etcd-root/usr/bin/etcd" "$BIN/etcd"
install -m 0755 "$WORK/etcd-root/usr/bin/etcdctl" "$BIN/etcdctl"

# --- Go 1.19 and reflect2 1.0.2 ----------------------------------------------------------
log "fetching Go 1.19 and reflect2 1.0.2 from Debian"
(cd "$WORK/debs" && apt-get -q download golang-1.19-go golang-1.19-src golang-github-modern-go-reflect2-dev >/dev/null)
rm -rf "$WORK/go-root" && mkdir -p "$WORK/go-root"
for deb in "$WORK"/debs/golang-1.19-go_*.deb "$WORK"/debs/golang-1.19-src_*.deb "$WORK"/debs/golang-github-modern-go-reflect2-dev_*.deb; do
  dpkg-deb -x "$deb" "$WORK/go-root"
done
export GOROOT="$WORK/go-root/usr/lib/go-1.19"
export PATH="$GOROOT/bin:$PATH"
go version >&2

# --- kubernetes source ---------------------------------------------------------------------
log "fetching Debian's kubernetes $KUBE_SRC_VERSION source package"
rm -rf "$WORK/src" && mkdir -p "$WORK/src"
(cd "$WORK/src" && apt-get -q source --download-only "kubernetes=$KUBE_SRC_VERSION" >/dev/null)
orig="$WORK/src/kubernetes_${KUBE_SRC_VERSION%%-*}.orig.tar.gz"
dsc="$WORK/src/kubernetes_${KUBE_SRC_VERSION}.dsc"
echo "$KUBE_ORIG_SHA256  $orig" | sha256sum --quiet -c -
echo "$KUBE_DSC_SHA256  $dsc" | sha256sum --quiet -c -
log "unpacking the upstream tree"
mkdir -p "$WORK/src/tree"
tar -xzf "$orig" -C "$WORK/src/tree" --strip-components=1

# The vendored reflect2 1.0.1 makes kube-apiserver crash on the first custom resource it
# decodes; Debian's 1.0.2 sources replace it.
reflect2_src="$WORK/go-root/usr/share/gocode/src/github.com/modern-go/reflect2"
vend="$WORK/src/tree/vendor/github.com/modern-go/reflect2"
[[ -d "$reflect2_src" ]] || { log "reflect2 sources not found in the Debian package"; exit 1; }
rm -rf "$vend" && mkdir -p "$vend" && cp -r "$reflect2_src"/. "$vend"/

log "building kube-apiserver, kube-controller-manager, kube-scheduler (several minutes on 2 cores)"
(
  cd "$WORK/src/tree"
  export GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0 GO111MODULE=on GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache"
  export KUBE_GIT_VERSION="$KUBE_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 KUBE_GIT_TREE_STATE=clean
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >"$WORK/make.log" 2>&1 \
    || { tail -40 "$WORK/make.log" >&2; exit 1; }
)
out="$WORK/src/tree/_output/bin"
for b in kube-apiserver kube-controller-manager kube-scheduler; do install -m 0755 "$out/$b" "$BIN/$b"; done

(cd "$BIN" && sha256sum "${WANT[@]}" >SHA256SUMS)
log "done; removing the build tree"
rm -rf "$WORK/src" "$WORK/gopath" "$WORK/gocache" "$WORK/go-root" "$WORK/etcd-root"
verify_cached
log "binaries ready in $BIN"
