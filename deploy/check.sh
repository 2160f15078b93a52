#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/kubernetes/overlays, so a
# broken patch, a missing file or a bad reference fails here rather than at
# `kubectl apply`. Run from anywhere:  deploy/check.sh
#
# Environment:
#   KUSTOMIZE   the command to run (default: the pinned version via go run,
#               which needs only Go; nothing is added to go.mod)
#   OUT         a directory to keep the rendered YAML in (default: discarded)
#   TREE        the kubernetes/ tree to render (default: the one next to this
#               script); the Go tests point it at a copy with extra overlays
#
# Exit status: 0 every overlay rendered, 1 one did not, 2 kustomize itself
# could not run (not installed, or not downloadable without a network), so
# callers can tell a broken manifest from a missing tool.
#
# Overlays that read a git-ignored secrets file (secrets.env) are rendered
# from a temporary copy of the tree in which that file is replaced by the
# committed secrets.env.example, so the check needs no secrets, never reads
# real ones, and writes nothing into the work tree.
set -euo pipefail

# v5.8.3 needs Go 1.27; v5.8.2 is the newest that builds with the
# project's Go 1.26.
KUSTOMIZE_VERSION=v5.8.2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -n "${KUSTOMIZE:-}" ]]; then
	read -r -a kustomize <<<"$KUSTOMIZE"
else
	kustomize=(go run "sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}")
fi

tree=${TREE:-$here/kubernetes}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -R "$tree" "$tmp/kubernetes"

# `go run pkg@version` must not see the project's go.mod: run it from the
# temporary directory.
cd "$tmp"

if ! "${kustomize[@]}" version >/dev/null 2>"$tmp/version.err"; then
	echo "kustomize (${kustomize[*]}) cannot run:" >&2
	sed 's/^/      /' "$tmp/version.err" >&2
	exit 2
fi

status=0
count=0
for dir in "$tmp"/kubernetes/overlays/*/; do
	name=$(basename "$dir")
	# Always the example, even when a real secrets.env exists: the check
	# (and OUT) never handle real secrets.
	if [[ -f "$dir/secrets.env.example" ]]; then
		cp "$dir/secrets.env.example" "$dir/secrets.env"
	fi
	out="$tmp/$name.yaml"
	if "${kustomize[@]}" build "$dir" >"$out" 2>"$tmp/$name.err"; then
		docs=$(grep -c '^kind: ' "$out" || true)
		printf 'ok    %-10s %3d objects\n' "$name" "$docs"
		if [[ -n "${OUT:-}" ]]; then
			mkdir -p "$OUT"
			cp "$out" "$OUT/$name.yaml"
		fi
	else
		printf 'FAIL  %s\n' "$name"
		sed 's/^/      /' "$tmp/$name.err"
		status=1
	fi
	count=$((count + 1))
done

if ((count == 0)); then
	echo "no overlays found under $tree/overlays" >&2
	exit 1
fi
exit "$status"
