#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The XSS proof and the corpus structure check (tests/xss/xss.cmake).
#
#   run.sh proof     SRC_DIR BUILD_DIR MAILROOM SHARED_DIR
#   run.sh structure SRC_DIR BUILD_DIR MAILROOM SHARED_DIR
#
# Exit 77 (skipped) when the shared folder is absent, or when chromium or
# node is missing and CI is not "true"; under CI=true a missing browser
# is a failure. playwright-core is installed once with `npm ci` into
# BUILD_DIR/xss-node from the committed package-lock.json; no browser is
# ever downloaded (Debian's /usr/bin/chromium is driven).
set -eu
what=$1 src=$2 build=$3 mailroom=$4 shared=$5
here=$src/tests/xss

if [ ! -f "$shared/vectors/xss.jsonl" ]; then
    echo "skipped: $shared/vectors/xss.jsonl not found"
    exit 77
fi

if [ "$what" = structure ]; then
    exec /usr/bin/python3 "$here/corpus_structure.py" --mailroom "$mailroom" \
        --shared "$shared"
fi

missing=""
[ -x /usr/bin/chromium ] || missing="$missing /usr/bin/chromium"
command -v node >/dev/null 2>&1 || missing="$missing node"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    if [ "${CI:-}" = true ]; then
        echo "FAIL: missing$missing (CI=true: the browser proof is required)"
        exit 1
    fi
    echo "skipped: missing$missing"
    exit 77
fi

nodedir=$build/xss-node
if [ ! -d "$nodedir/node_modules/playwright-core" ] ||
   ! cmp -s "$here/package-lock.json" "$nodedir/package-lock.json"; then
    mkdir -p "$nodedir"
    cp "$here/package.json" "$here/package-lock.json" "$nodedir/"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$nodedir" \
        --ignore-scripts --no-audit --no-fund >/dev/null 2>&1 || {
        echo "FAIL: npm ci --prefix $nodedir failed (is the npm registry reachable?)"
        exit 1
    }
fi

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 exec timeout 1700 node "$here/proof.mjs" \
    --mailroom "$mailroom" --vectors "$shared/vectors/xss.jsonl" \
    --node-dir "$nodedir" --control-floor "${MR_XSS_CONTROL_FLOOR:-0.35}"
