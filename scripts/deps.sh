#!/bin/sh
# Installs the Debian packages V6 builds and tests with, if any is missing.
# As root it runs apt-get; otherwise it prints the command to run.
set -e
PKGS=$(grep -v '^#' "$(dirname "$0")/packages.txt")
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "v6: missing packages:$missing" >&2
	echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "v6: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing >/dev/null
