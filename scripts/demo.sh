#!/usr/bin/env bash
# `npm run demo`: Offsite's main job on its embedded default, a local directory acting as the
# bucket (./demo-bucket, or $OFFSITE_DEMO_DIR/demo-bucket). Puts a file and a snapshot, lists
# them, verifies them, reads them back and compares, then runs the doctor on the bucket. Then a
# backup job: a live SQLite database (./demo-app/app.db) backed up while a writer keeps
# inserting, its backups listed as local / s3 / both, one restored from the bucket and checked;
# it ends with the command that opens the console on the same data.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
offsite="$repo/bin/offsite"
work="${OFFSITE_DEMO_DIR:-$repo}"
cd "$work"
bucket=./demo-bucket
app=./demo-app
rm -rf "$bucket" demo-readback "$app"
mkdir -p demo-readback "$app"

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
printf '\nfile and snapshot stored in %s, verified and read back identical\n' "$(cd "$bucket" && pwd)"

# A backup job: a live SQLite database, written to while it is backed up into the same bucket.
# The demo keeps its own manifest key (the key that signs what is uploaded) and catalog.
export OFFSITE_MANIFEST_KEY_FILE="${OFFSITE_MANIFEST_KEY_FILE:-$(pwd)/demo-app/manifest.key}"
sqlite_tool="$repo/scripts/demo-sqlite.mjs"
node "$sqlite_tool" create "$app/app.db" 20000
cat >"$app/offsite.toml" <<'TOML'
[catalog]
path = "console/catalog.db"          # the catalog `offsite console --data-dir demo-app/console` reads

[jobs.app]
source = "sqlite:app.db"             # relative to this file
destination = "../demo-bucket/backups/"
local_dir = "backups"
schedule = "1h"
TOML
config="$app/offsite.toml"
node "$sqlite_tool" write "$app/app.db" &
writer=$!
trap 'kill "$writer" 2>/dev/null || true' EXIT
printf '\n\033[1m# a writer inserts 2,500 rows a second into %s while it is backed up\033[0m\n' "$app/app.db"
sleep 0.3
step backup app --config "$config"
sleep 0.3
step backup app --config "$config"
sleep 0.3
step backup app --config "$config"
kill "$writer"
wait "$writer" 2>/dev/null || true
trap - EXIT

# Three backups, each in both places; then the first is cleaned up locally (still in the bucket)
# and the last deleted from the bucket (only local): the listing shows each state.
names=$("$offsite" backups app --config "$config" --json | node -e 'const l=JSON.parse(require("fs").readFileSync(0,"utf8"));console.log(l.map((b)=>b.name).reverse().join(" "))')
read -r first _middle last <<<"$names"
printf '\n\033[1m$ rm %s/backups/%s{,.sha256}\033[0m  (the local copy cleaned up)\n' "$app" "$first"
rm "$app/backups/$first" "$app/backups/$first.sha256"
step rm "$bucket/backups/$last"
step backups app --config "$config"
listing=$("$offsite" backups app --config "$config")
grep -q "^s3 .*$first" <<<"$listing"
grep -q "^both .*$_middle" <<<"$listing"
grep -q "^local .*$last" <<<"$listing"

# Restore the one only in the bucket: downloaded, checked against the catalog, kept locally.
step restore app "$first" --to demo-readback/restored.db --config "$config"
printf '\n\033[1m# check: PRAGMA integrity_check, rows 1..n each as written, no more than the live database\033[0m\n'
node "$sqlite_tool" check demo-readback/restored.db "$app/app.db"

printf '\ndemo OK: file and snapshot read back identical; the live SQLite database backed up 3 times while written, listed as s3 / both / local, restored from the bucket and checked\n'
printf '\nOpen the console on the same data (it prints the admin token on its first start):\n'
printf '  OFFSITE_MANIFEST_KEY_FILE=%q %q console --config %q --data-dir %q\n' "$OFFSITE_MANIFEST_KEY_FILE" "$offsite" "$(cd "$app" && pwd)/offsite.toml" "$(cd "$app" && pwd)/console"
