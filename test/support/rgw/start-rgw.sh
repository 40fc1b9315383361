#!/usr/bin/env bash
# Offsite test harness (adapted from the team recipe in shared/s3-test-server).
# Start a throw-away single-node Ceph (1 mon + 1 memstore OSD + radosgw, no mgr, no cephx)
# on 127.0.0.1 only, without systemd. Everything lives under CEPH_DIR (wiped on every start).
# Takes ~1 s. S3 endpoint http://127.0.0.1:$RGW_PORT, user test / $ACCESS_KEY / $SECRET_KEY.
#
#   usage: ./start-rgw.sh [CEPH_DIR]        (default /tmp/offsite-rgw); the test runner passes its own
#   env:   RGW_PORT (7480) MON_PORT (6789) ACCESS_KEY SECRET_KEY OBJECTSTORE (memstore|bluestore)
#          RGW_STORAGE_CLASSES ("GLACIER DEEP_ARCHIVE")  RGW_DEBUG (1; 20 = log every request)
#   stop:  ./stop-rgw.sh [CEPH_DIR]
#
# Needs: apt-get install --no-install-recommends ceph-mon ceph-osd radosgw   (16.2.x Pacific)
set -euo pipefail
T0=$(date +%s%N)
ts() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[%d.%03ds] %s\n' $((ms/1000)) $((ms%1000)) "$*"; }

D=$(realpath -m "${1:-/tmp/offsite-rgw}")
case "$D" in /|/tmp|/root|/home|/usr*|/etc*|/var) echo "refusing to use $D (it is wiped)" >&2; exit 1;; esac
trap 'echo "start-rgw.sh failed at line $LINENO; see logs in $D/log" >&2' ERR
RGW_PORT=${RGW_PORT:-7480}
MON_PORT=${MON_PORT:-6789}
ACCESS_KEY=${ACCESS_KEY:-testaccesskey}
SECRET_KEY=${SECRET_KEY:-testsecretkey}
OBJECTSTORE=${OBJECTSTORE:-memstore}
# extra S3 storage classes to accept (mapped to the same data pool as STANDARD); "" = STANDARD only
RGW_STORAGE_CLASSES=${RGW_STORAGE_CLASSES-GLACIER DEEP_ARCHIVE}

# refuse to clobber a running cluster in the same dir
if compgen -G "$D/run/*.pid" >/dev/null; then
  for p in "$D"/run/*.pid; do
    if kill -0 "$(cat "$p")" 2>/dev/null; then echo "already running ($p); run stop-rgw.sh first" >&2; exit 1; fi
  done
fi
rm -rf "$D"
mkdir -p "$D"/{mon/ceph-a,osd/ceph-0,run,log}

FSID=$(uuidgen)
CONF="$D/ceph.conf"
export CEPH_CONF="$CONF"          # every ceph / radosgw-admin call below picks this up

cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
public network = 127.0.0.0/8
# loopback only, old msgr v1 protocol only (no port 3300)
ms bind msgr2 = false
# no cephx: simplest; S3 auth in RGW is independent of this
auth cluster required = none
auth service required = none
auth client required = none
# single replica, tiny PG counts, no host-level failure domain
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
# headroom if tests create extra pools (default limit 250 PGs per OSD)
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# everything under \$D
run dir = $D/run
pid file = $D/run/\$cluster-\$name.pid
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
crash dir = $D/log/crash
log to stderr = false
err to stderr = true
mon cluster log file = $D/log/\$cluster.log
# fail fast instead of hanging 300 s if the mon is not there (port taken, ...)
client mount timeout = 15

[mon]
mon data = $D/mon/\$cluster-\$id
mon initial members = a
mon allow pool delete = true
# the mon batches OSDMap changes for paxos_propose_interval (1 s default); every pool
# create / app enable by RGW costs one round -> ~9 s startup. Shorten it.
paxos propose interval = 0.01
paxos min wait = 0.001
mon warn on insecure global id reclaim allowed = false

[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = $OBJECTSTORE
memstore device bytes = 8589934592
bluestore block path = $D/osd/\$cluster-\$id/block.img
bluestore block create = true
bluestore block size = ${BLUESTORE_BYTES:-10737418240}
bluestore fsck on mount = false
# fewer threads for a 2-core test box
osd op num shards = 2
osd op num threads per shard = 1
# with auth=none the OSD's first mon command can race ahead of the monmap and is sent
# with fsid 0000... -> "mon_cmd_maybe_osd_create fail: 'wrong fsid'" and the OSD exits
# (~50% of starts). Skip those boot-time crush commands; the script places the OSD itself.
osd crush update on start = false
osd class update on start = false

[client.rgw.a]
# loopback only; tcp_nodelay avoids a ~40 ms Nagle/delayed-ACK stall on every small PUT
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
# only needed for virtual-host style (bucket.localhost); path-style works regardless
rgw dns name = localhost
# lifecycle: one "day" in Days/Transitions/Expiration = 10 s, so LC rules really run in tests
rgw lc debug interval = 10
# garbage-collect tails of deleted/overwritten objects after 10 s instead of 2 h (memstore = RAM)
rgw gc obj min wait = 10
rgw gc processor period = 10
# allow x-amz-server-side-encryption over plain http (default: 400 InvalidRequest)
rgw crypt require ssl = false
debug rgw = ${RGW_DEBUG:-1}
EOF

ts "conf written ($FSID)"

# --- monitor ---------------------------------------------------------------
monmaptool --create --fsid "$FSID" --addv a "[v1:127.0.0.1:$MON_PORT]" "$D/monmap" >/dev/null
ceph-mon -i a --mkfs --monmap "$D/monmap"
ceph-mon -i a                              # daemonizes, pid in $D/run
ts "mon started"

# --- OSD -------------------------------------------------------------------
OSD_UUID=$(uuidgen)
OSD_ID=$(ceph osd new "$OSD_UUID")        # allocates id 0 (waits for mon quorum)
ceph osd crush add "osd.$OSD_ID" 1.0 root=default 2>>"$D/log/setup.log"
ts "osd id $OSD_ID allocated and placed in crush root=default"
ceph-osd -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>>"$D/log/setup.log"
ceph-osd -i "$OSD_ID" 2>>"$D/log/setup.log"   # daemonizes after init; non-zero exit if init fails
ts "osd started"

# --- radosgw ---------------------------------------------------------------
# radosgw-admin talks to RADOS directly, so the S3 user can be created before radosgw runs;
# its first run also creates the 'default' zonegroup/zone + .rgw.root/default.rgw.* pools.
radosgw-admin user create --uid=test --display-name=test \
  --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$D/user.json"
ts "S3 user test created (access=$ACCESS_KEY secret=$SECRET_KEY)"

# optional extra storage classes: must exist in zonegroup+zone placement *before* radosgw
# starts (no realm/period here, so radosgw only reads them at startup).
for sc in $RGW_STORAGE_CLASSES; do
  radosgw-admin zonegroup placement add --rgw-zonegroup default \
    --placement-id default-placement --storage-class "$sc" >/dev/null
  radosgw-admin zone placement add --rgw-zone default --placement-id default-placement \
    --storage-class "$sc" --data-pool default.rgw.buckets.data >/dev/null
done
[ -n "$RGW_STORAGE_CLASSES" ] && ts "storage classes added: $RGW_STORAGE_CLASSES"
radosgw -n client.rgw.a
ts "radosgw started"

# wait until beast answers HTTP (anonymous ListBuckets -> 200)
for i in $(seq 1 300); do
  if curl -fs -o /dev/null "http://127.0.0.1:$RGW_PORT/" 2>/dev/null; then break; fi
  if [ "$i" = 300 ]; then echo "radosgw did not come up; see $D/log" >&2; tail -20 "$D/log/ceph-client.rgw.a.log" >&2; exit 1; fi
  sleep 0.1
done
ts "rgw answering HTTP on 127.0.0.1:$RGW_PORT"
echo "CEPH_CONF=$CONF"
