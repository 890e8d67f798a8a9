#!/bin/sh
# `make demo`: starts a V6 server (HTTPS, its own CA) in a temporary data
# directory, writes the admin kubeconfig, applies examples/, shows what it
# created, and leaves the server running for you to explore (it prints how
# to stop it).
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
# V6_DEMO_SERVER_ARGS: extra server flags (the e2e test gives its own address ranges)
# The examples run `v6 testapp` from the host: the process runtime (as root the
# server would default to runc, which runs OCI images; see README "Containers").
"$V6" server --data-dir "$DATA" --listen "127.0.0.1:$PORT" --default-runtime process ${V6_DEMO_SERVER_ARGS:-} >"$DATA/server.log" 2>&1 &
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
echo "==> v6 apply -f examples/"
"$V6" apply -f examples/
echo "==> v6 apply -f examples/ (again: nothing changes)"
"$V6" apply -f examples/
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
echo "Stop it with: $V6 delete namespace demo && kill $PID \$(cut -d' ' -f1 $DATA/proxy/proxy.pid)"
echo "(workloads outlive the server by design: delete them before stopping it)"
