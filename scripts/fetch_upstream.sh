#!/usr/bin/env bash
# Puts upstream InfiniteTalk at the pinned commit into DEST (default .cache/upstream/InfiniteTalk)
# and prints DEST. With UPSTREAM_ARCHIVE set (CI, which cannot reach GitHub), it unpacks that
# `git archive` tarball after checking its sha256; otherwise it fetches the commit with git.
# A DEST already holding the commit is reused. Never copies upstream into the repository.
set -euo pipefail

# The pin lives in infinitetalk/upstream/pinned.py; the archive's hash belongs to that commit.
COMMIT=$(sed -n 's/^UPSTREAM_COMMIT = "\([0-9a-f]\{40\}\)"$/\1/p' \
    "$(dirname "$0")/../infinitetalk/upstream/pinned.py")
[ -n "$COMMIT" ] || { echo "fetch_upstream: no UPSTREAM_COMMIT in infinitetalk/upstream/pinned.py" >&2; exit 1; }
ARCHIVE_SHA256=e5b34c9e9a05cad5871eaacb891049632ea2a4a10abcb7c551b9f7afcc4dec68
REPOSITORY=https://github.com/MeiGen-AI/InfiniteTalk.git
DEST=${1:-.cache/upstream/InfiniteTalk}
STAMP="$DEST/.upstream-commit"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$COMMIT" ]; then
    echo "$DEST"
    exit 0
fi
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
if [ -n "${UPSTREAM_ARCHIVE:-}" ]; then
    actual=$(sha256sum "$UPSTREAM_ARCHIVE" | cut -d' ' -f1)
    if [ "$actual" != "$ARCHIVE_SHA256" ]; then
        echo "fetch_upstream: $UPSTREAM_ARCHIVE has sha256 $actual, expected $ARCHIVE_SHA256" >&2
        exit 1
    fi
    staging=$(mktemp -d "$(dirname "$DEST")/.unpack.XXXXXX")
    tar -xzf "$UPSTREAM_ARCHIVE" -C "$staging"
    mv "$staging/InfiniteTalk-$COMMIT" "$DEST"
    rmdir "$staging"
else
    git init --quiet "$DEST"
    git -C "$DEST" remote add origin "$REPOSITORY"
    git -C "$DEST" fetch --quiet --depth 1 origin "$COMMIT"
    git -C "$DEST" checkout --quiet --detach FETCH_HEAD
fi
echo "$COMMIT" > "$STAMP"
echo "$DEST"
