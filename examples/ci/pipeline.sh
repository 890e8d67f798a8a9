#!/bin/sh
# A CI/CD pipeline any CI runs as a shell step (docs/ci.md): build the app's
# OCI image tagged with the commit, push it, roll it out to staging with
# `v6 apply -k --wait`, then promote staging's exact release to prod.
# Every step's exit code fails the pipeline (set -e).
#
# Environment:
#   REGISTRY    registry host[:port] to push to (required), e.g. 127.0.0.1:5000
#   V6_SERVER   the V6 API server (or KUBECONFIG), as for any v6 command
#   COMMIT      the tag (default: git rev-parse --short=12 HEAD)
#   APP_BIN     the app's static binary (default: build/v6-testapp)
#   IMAGE_NAME  repository in the registry (default: v6/app)
#   V6          the v6 binary (default: v6 on PATH)
#   TIMEOUT     how long each rollout may take (default: 5m)
#   PUSH_TLS_VERIFY  false for a plain-HTTP registry (default: true)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
: "${REGISTRY:?set REGISTRY to the registry host[:port] to push to}"
COMMIT=${COMMIT:-$(git rev-parse --short=12 HEAD)}
APP_BIN=${APP_BIN:-build/v6-testapp}
IMAGE_NAME=${IMAGE_NAME:-v6/app}
V6=${V6:-v6}
TIMEOUT=${TIMEOUT:-5m}
PUSH_TLS_VERIFY=${PUSH_TLS_VERIFY:-true}
IMAGE="$REGISTRY/$IMAGE_NAME"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/v6-ci.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

step() { printf '==> %s\n' "$*"; }

# 1. Build: one layer with the binary as /app, fixed times and owners (the
# same binary and commit give the same digest), then an OCI layout.
step "build $IMAGE:$COMMIT from $APP_BIN"
mkdir -p "$WORK/rootfs"
install -m 0755 "$APP_BIN" "$WORK/rootfs/app"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$WORK/rootfs" -cf "$WORK/layer.tar" app
umoci init --layout "$WORK/oci"
umoci new --image "$WORK/oci:$COMMIT"
umoci raw add-layer --image "$WORK/oci:$COMMIT" "$WORK/layer.tar"
umoci config --image "$WORK/oci:$COMMIT" --config.entrypoint /app \
    --config.exposedports 8080/tcp --config.user 65534:65534 --config.workingdir / \
    --created 1970-01-01T00:00:00Z --os linux --architecture amd64 \
    --config.label org.opencontainers.image.revision="$COMMIT"

# 2. Push, and note the digest the registry serves it under.
step "push $IMAGE:$COMMIT"
skopeo copy --quiet --dest-tls-verify="$PUSH_TLS_VERIFY" \
    --digestfile "$WORK/digest" "oci:$WORK/oci:$COMMIT" "docker://$IMAGE:$COMMIT"
echo "pushed $IMAGE:$COMMIT@$(cat "$WORK/digest")"

# 3. Staging: the environments, then the staging overlay with this image
# (what `kustomize edit set image` would write, in a throw-away overlay on
# top of the checked-in one), applied and waited for.
step "apply to staging"
"$V6" apply -f "$HERE/namespaces.yaml"
mkdir -p "$WORK/release"
STAGING=$(realpath --relative-to="$WORK/release" "$HERE/overlays/staging")
cat > "$WORK/release/kustomization.yaml" <<YAML
resources:
  - $STAGING
images:
  - name: app
    newName: $IMAGE
    newTag: "$COMMIT"
YAML
"$V6" apply -k "$WORK/release" --wait --timeout "$TIMEOUT"

# 4. Prod: staging's release, each image pinned to the digest staging runs.
step "promote to prod"
"$V6" promote deploy/app --from staging --to prod --wait --timeout "$TIMEOUT"
printf 'prod runs %s\n' "$("$V6" get deploy app -n prod \
    -o jsonpath='{.spec.template.spec.containers[0].image}')"
