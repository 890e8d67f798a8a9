#!/bin/sh
# `make demo`: starts a local registry (Debian's docker-registry on
# localhost:5000) and pushes the test workload's image to it, starts a V6
# server (HTTPS, its own CA) in a temporary data directory (as root with
# runc: pods are runc containers), writes the admin kubeconfig, applies
# examples/, shows what it created, and leaves both running for you to
# explore (it prints how to stop them).
set -e
V6=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")/.."
DATA=$(mktemp -d /tmp/v6-demo.XXXXXX)
PORT=${V6_DEMO_PORT:-6443}
if ! python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1])))' "$PORT" 2>/dev/null; then
	PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
URL="https://127.0.0.1:$PORT"
unset V6_SERVER
export KUBECONFIG="$DATA/kubeconfig"
# The registry the examples' images come from (localhost:5000/v6/testapp):
# one already answering there is used as it is, else one is started with its
# storage in the data directory. V6_DEMO_REGISTRY=HOST:PORT puts it elsewhere
# (the e2e test: no fixed port); the examples are then applied with their
# image references rewritten to it.
REG=${V6_DEMO_REGISTRY:-localhost:5000}
IMAGES=$(dirname "$V6")/images/testapp
[ -d "$IMAGES" ] || { echo "no $IMAGES: run make first" >&2; exit 1; }
REGPID=
if ! curl -sf "http://$REG/v2/" >/dev/null 2>&1; then
	mkdir -p "$DATA/registry"
	printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
	    "$DATA/registry/data" "$REG" >"$DATA/registry/config.yml"
	docker-registry serve "$DATA/registry/config.yml" >"$DATA/registry/log" 2>&1 &
	REGPID=$!
	i=0
	until curl -sf "http://$REG/v2/" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 $REGPID 2>/dev/null; then
			echo "docker-registry did not start on $REG; its log:" >&2
			cat "$DATA/registry/log" >&2; exit 1
		fi
		sleep 0.1
	done
	echo "==> docker-registry (pid $REGPID) serving $REG"
fi
for tag in 0.1 0.2 0.3; do
	echo "==> skopeo copy oci:$IMAGES:$tag docker://$REG/v6/testapp:$tag"
	skopeo copy --quiet --dest-tls-verify=false "oci:$IMAGES:$tag" "docker://$REG/v6/testapp:$tag"
done
# V6_DEMO_SERVER_ARGS: extra server flags (the e2e test gives its own address ranges)
# As root with runc, pods are runc containers of the images (the default
# runtime); each listens on its own 127.1.x.y address on the host's network.
"$V6" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" ${V6_DEMO_SERVER_ARGS:-} >"$DATA/server.log" 2>&1 &
PID=$!
i=0
until curl -sf --cacert "$DATA/pki/ca.crt" --cert "$DATA/pki/admin.crt" \
    --key "$DATA/pki/admin.key" "$URL/readyz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 $PID 2>/dev/null; then
		echo "v6 server did not start; its log:" >&2; cat "$DATA/server.log" >&2; exit 1
	fi
	sleep 0.1
done
echo "==> v6 server (pid $PID) serving $URL, data in $DATA"
echo "==> v6 kubeconfig --data-dir $DATA --out $KUBECONFIG   (the admin's credentials)"
"$V6" kubeconfig --data-dir "$DATA" --out "$KUBECONFIG"
apply() {
	if [ "$REG" = localhost:5000 ]; then
		"$V6" apply -f examples/
	else
		for f in examples/*.yaml; do
			sed "s#localhost:5000/#$REG/#" "$f"; echo "---"
		done | "$V6" apply -f -
	fi
}
echo "==> v6 apply -f examples/"
apply
echo "==> v6 apply -f examples/ (again: nothing changes)"
apply
echo "==> v6 rollout status deployment/web -n demo"
"$V6" rollout status deployment/web -n demo --timeout 90s
echo "==> v6 get deployments,replicasets,pods -n demo -o wide"
"$V6" get deployments,replicasets,pods -n demo -o wide
IP=$("$V6" get pods -n demo -l app=web -o jsonpath='{.items[0].status.podIP}')
echo "==> curl http://$IP:8080/   (one replica, on its own pod IP)"
curl -s "http://$IP:8080/"; echo
SVC=$("$V6" get svc web -n demo -o jsonpath='{.spec.clusterIP}')
echo "==> curl http://$SVC/   (the Service, through the V6 proxy: round robin)"
for i in 1 2 3; do curl -s "http://$SVC/"; echo; done
echo
echo "V6 keeps running. Try:"
echo "  export KUBECONFIG=$KUBECONFIG        # kubectl reads it too"
echo "  $V6 describe deployment web -n demo"
echo "  $V6 get deploy,svc,cm -A"
echo "  $V6 get deploy web -n demo -o yaml"
echo "  $V6 logs deploy/web -n demo"
echo "  $V6 top pods -n demo"
echo "  $V6 get rollouts -n demo -o wide          # canary and blue-green (see README)"
echo "  $V6 rollout status rollout/shop -n demo   # the canary tour: README.md"
echo "Stop it with: $V6 delete namespace demo && kill $PID \$(cut -d' ' -f1 $DATA/proxy/proxy.pid)${REGPID:+ $REGPID}"
echo "(workloads outlive the server by design: delete them before stopping it)"
