#!/usr/bin/env bash
# A throw-away single-node Ceph cluster (1 mon + 1 memstore OSD, RAM only) with radosgw on
# 127.0.0.1, from Debian's packages: the S3 service the tests use, as in production (Ceph RGW).
# Credentials: access key "test", secret "testsecret". Everything listens on loopback only.
set -euo pipefail
D=${CEPH_DIR:-$PWD/.services/ceph}
RGW_PORT=${RGW_PORT:-7480}
rm -rf "$D"
mkdir -p "$D"/{mon/a,osd/0,log,run}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat >"$D/ceph.conf" <<CONF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:3300,v1:127.0.0.1:6789]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 1
[mon.a]
mon data = $D/mon/a
paxos propose interval = 0.05
paxos min wait = 0.01
[osd.0]
osd data = $D/osd/0
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 536870912
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $D/rgw
rgw dns name = localhost
ms mon client mode = crc
CONF
C="-c $D/ceph.conf"
monmaptool --create --fsid "$FSID" --addv a '[v2:127.0.0.1:3300,v1:127.0.0.1:6789]' "$D/monmap" >/dev/null
ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-mon $C --mkfs -i a --monmap "$D/monmap" --keyring "$D/mon.keyring"
ceph-mon $C -i a
OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
ceph $C osd new "$OSD_UUID" 0 >/dev/null
ceph-osd $C -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$D/log/mkfs.log" 2>&1
ceph $C osd crush add-bucket localhost host >/dev/null 2>&1
ceph $C osd crush move localhost root=default >/dev/null 2>&1
ceph $C osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
ceph-osd $C -i 0 2>>"$D/log/osd-start.log"
for _ in $(seq 1 100); do ceph $C osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.2; done
# RGW's pools up front, so the first bucket and object do not each wait for pool creation
for p in .rgw.root default.rgw.log default.rgw.control default.rgw.meta default.rgw.buckets.index \
  default.rgw.buckets.data default.rgw.buckets.non-ec; do
  ceph $C osd pool create "$p" 8 8 >/dev/null 2>&1
done
radosgw $C -n client.rgw.a
for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$RGW_PORT/" && break; sleep 0.2; done
radosgw-admin $C user create --uid=test --display-name=test --access-key=test --secret=testsecret >/dev/null
echo "rgw ready on http://127.0.0.1:$RGW_PORT (access key test / secret testsecret)"
