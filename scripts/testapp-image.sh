#!/bin/sh
# Builds the test workload's OCI image (Makefile, issue 10 part 6):
#   testapp-image.sh BINARY OUTDIR "TAG..."
# OUTDIR/testapp is an OCI layout with one image per TAG: one layer holding
# BINARY as /testapp, Entrypoint ["/testapp"], port 8080, user 65534 (nobody).
# OUTDIR/testapp.tar is an oci-archive of every tag, each named
# localhost:5000/v6/testapp:TAG, which `v6 image import` loads without a
# registry. Needs umoci and skopeo (scripts/packages.txt).
set -e
BIN=$1 OUT=$2 TAGS=$3
for tool in umoci skopeo; do
	command -v $tool >/dev/null || {
		echo "testapp-image.sh: $tool is missing: run scripts/deps.sh (or make deps)" >&2
		exit 1
	}
done
rm -rf "$OUT/testapp" "$OUT/testapp.tar" "$OUT/rootfs" "$OUT/archive"
mkdir -p "$OUT/rootfs"
install -m 0755 "$BIN" "$OUT/rootfs/testapp"
# Fixed times and owners: the same binary gives the same layer digest.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$OUT/rootfs" -cf "$OUT/layer.tar" testapp
umoci init --layout "$OUT/testapp"
for tag in $TAGS; do
	umoci new --image "$OUT/testapp:$tag"
	umoci raw add-layer --image "$OUT/testapp:$tag" "$OUT/layer.tar"
	umoci config --image "$OUT/testapp:$tag" --config.entrypoint /testapp \
	    --config.exposedports 8080/tcp --config.user 65534:65534 \
	    --config.workingdir / --created 1970-01-01T00:00:00Z \
	    --author "V6" --os linux --architecture amd64 \
	    --config.label org.opencontainers.image.title=v6-testapp \
	    --config.label org.opencontainers.image.version=$tag
done
umoci gc --layout "$OUT/testapp"
for tag in $TAGS; do
	skopeo copy --quiet "oci:$OUT/testapp:$tag" "oci:$OUT/archive:localhost:5000/v6/testapp:$tag"
done
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
    -C "$OUT/archive" -cf "$OUT/testapp.tar" .
rm -rf "$OUT/rootfs" "$OUT/layer.tar" "$OUT/archive"
