#!/usr/bin/env bash
# `npm run demo`: Offsite's main job on its embedded default, a local directory acting as the
# bucket (./demo-bucket, or $OFFSITE_DEMO_DIR/demo-bucket). Puts a file and a snapshot, lists
# them, verifies them, reads them back and compares, then runs the doctor on the bucket.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
offsite="$repo/bin/offsite"
work="${OFFSITE_DEMO_DIR:-$repo}"
cd "$work"
bucket=./demo-bucket
rm -rf "$bucket" demo-readback
mkdir -p demo-readback

step() { printf '\n\033[1m$ offsite %s\033[0m\n' "$*"; "$offsite" "$@"; }

# A file to back up: the project's README, and a JSON state to snapshot.
cp "$repo/README.md" demo-readback/source.md
state='{"agent":"demo","step":3,"notes":["first run","ünïcode ✓"]}'

step put demo-readback/source.md "$bucket/docs/README.md" --meta origin=demo
printf '\n\033[1m$ offsite snapshot save demo/state -\033[0m  (JSON on stdin)\n'
printf '%s' "$state" | "$offsite" snapshot --storage "$bucket" save demo/state - --agent-id demo --description "demo snapshot"
step ls -r "$bucket"
step snapshot --storage "$bucket" verify demo/state
step snapshot --storage "$bucket" info demo/state
step get "$bucket/docs/README.md" demo-readback/README.md
printf '\n\033[1m$ offsite snapshot restore demo/state -o demo-readback/state.json\033[0m\n'
"$offsite" snapshot --storage "$bucket" restore demo/state -o demo-readback/state.json
step doctor "$bucket"

# Read back and compare: the file byte for byte, the snapshot as JSON.
cmp demo-readback/source.md demo-readback/README.md
node -e 'const a=JSON.parse(process.argv[1]),b=JSON.parse(require("fs").readFileSync(process.argv[2],"utf8"));if(JSON.stringify(a)!==JSON.stringify(b)){console.error("snapshot differs");process.exit(1)}' "$state" demo-readback/state.json
printf '\ndemo OK: file and snapshot stored in %s, verified and read back identical\n' "$(cd "$bucket" && pwd)"
