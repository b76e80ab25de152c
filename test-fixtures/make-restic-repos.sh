#!/usr/bin/env bash
# Makes restic-written repositories from the fixture tree, for the restic -> restic-ts tests.
#
#   test-fixtures/make-restic-repos.sh OUTDIR
#
# OUTDIR (must not exist or be empty) receives:
#   password            the password of every repo
#   src/                the tree as of the second (latest) snapshot; both snapshots were taken of this path
#   state1/             copy (cp -a) of src/ as it was for the first snapshot
#   repo-v2-auto/ repo-v2-off/ repo-v2-max/   v2 repos backed up with --compression auto|off|max
#   repo-v1/            v1 repo (restic init --repository-version 1)
# Each repo holds two snapshots of OUTDIR/src (host "fixture-host"; tags "first", "second").
set -euo pipefail

if [ "$#" -ne 1 ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
if [ -n "$(ls -A "$out")" ]; then
  echo "$out is not empty" >&2
  exit 1
fi

printf '%s\n' 'correct horse battery staple' > "$out/password"
export RESTIC_PASSWORD_FILE="$out/password"
repos=(v2-auto v2-off v2-max v1)

# --no-cache: these repos are thrown away, nothing should pile up in ~/.cache/restic.
r() { restic --no-cache -q -r "$out/repo-$1" "${@:2}"; }

compression_of() {
  case "$1" in
    v2-*) echo "--compression=${1#v2-}" ;;
    *) echo "" ;;
  esac
}

for name in "${repos[@]}"; do
  version=2
  [ "$name" = v1 ] && version=1
  r "$name" init --repository-version "$version" > /dev/null
done

node "$here/make-tree.mjs" "$out/src"
for name in "${repos[@]}"; do
  # shellcheck disable=SC2046 # empty for v1, where restic refuses --compression
  r "$name" $(compression_of "$name") backup --host fixture-host --tag first "$out/src" > /dev/null
done

cp -a "$out/src" "$out/state1"
node "$here/make-tree.mjs" --mutate "$out/src"
for name in "${repos[@]}"; do
  # shellcheck disable=SC2046
  r "$name" $(compression_of "$name") backup --host fixture-host --tag second "$out/src" > /dev/null
done
