#!/usr/bin/env bash
# akte's cluster topology on one machine, without containers: an S3 server (moto, with an
# Object Lock bucket and an unlocked key bucket; or s3s-fs, which checks signatures and
# checksums) and N akte nodes on loopback sharing one bucket. The tests use it.
#
#   deploy/local-cluster.sh install [--s3s-fs]   install moto into a virtualenv (and s3s-fs)
#   deploy/local-cluster.sh s3 DIR [moto|s3s-fs] start an S3 server on a free port; writes
#                                                DIR/s3.env (endpoint, credentials, buckets)
#   deploy/local-cluster.sh up DIR [N]           moto + N akte nodes (default 3); writes
#                                                DIR/nodes (one base URL per line)
#   deploy/local-cluster.sh down DIR             stops what `s3` and `up` started
#
# Environment: AKTE_VENV (default ~/.cache/akte-venv), AKTE_BIN (default: target/debug/akte
# or `akte` on PATH), AKTE_ADMIN_TOKEN for the nodes (default: a fixed test token).
set -euo pipefail

VENV=${AKTE_VENV:-$HOME/.cache/akte-venv}
MOTO_VERSION=5.2.5
S3S_VERSION=0.14.1
here=$(cd "$(dirname "$0")/.." && pwd)

die() { echo "local-cluster: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port seconds
    for _ in $(seq 1 $(( $2 * 10 ))); do
        if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
    fi
    if ! "$VENV/bin/python" -c 'import moto, boto3' 2>/dev/null; then
        echo "local-cluster: installing moto[server] into $VENV" >&2
        "$VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION" boto3
    fi
    if [ "${1:-}" = "--s3s-fs" ] && ! command -v s3s-fs >/dev/null; then
        echo "local-cluster: installing s3s-fs $S3S_VERSION (cargo install, a few minutes)" >&2
        cargo install --locked s3s-fs --version "$S3S_VERSION" --features binary
    fi
}

start_s3() { # dir server
    local dir=$1 server=${2:-moto} port
    mkdir -p "$dir"
    port=$(free_port)
    case "$server" in
    moto)
        [ -x "$VENV/bin/moto_server" ] || die "moto is not installed: run '$0 install'"
        "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/s3.log" 2>&1 &
        echo $! >"$dir/s3.pid"
        wait_port "$port" 30 || die "moto did not start (see $dir/s3.log)"
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$VENV/bin/python" - "$port" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
# The archive bucket: Object Lock (which also turns on versioning), compliance mode, a
# default retention of one day so that every object is locked from its first byte.
s3.create_bucket(Bucket="akte-lock", ObjectLockEnabledForBucket=True)
s3.put_object_lock_configuration(
    Bucket="akte-lock",
    ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}},
    },
)
# Keys must be destroyable: a versioned bucket without Object Lock.
s3.create_bucket(Bucket="akte-keys")
s3.put_bucket_versioning(Bucket="akte-keys", VersioningConfiguration={"Status": "Enabled"})
s3.create_bucket(Bucket="akte-plain")
EOF
        ;;
    s3s-fs)
        command -v s3s-fs >/dev/null || die "s3s-fs is not installed: run '$0 install --s3s-fs'"
        mkdir -p "$dir/s3s/akte-plain" "$dir/s3s/akte-keys"
        s3s-fs --host 127.0.0.1 --port "$port" --access-key test --secret-key test \
            "$dir/s3s" >"$dir/s3.log" 2>&1 &
        echo $! >"$dir/s3.pid"
        wait_port "$port" 30 || die "s3s-fs did not start (see $dir/s3.log)"
        ;;
    *) die "unknown S3 server $server (moto or s3s-fs)" ;;
    esac
    cat >"$dir/s3.env" <<EOF
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
AWS_REGION=us-east-1
AKTE_S3_ENDPOINT=http://127.0.0.1:$port
AKTE_S3_SERVER=$server
EOF
    echo "http://127.0.0.1:$port"
}

akte_bin() {
    if [ -n "${AKTE_BIN:-}" ]; then echo "$AKTE_BIN"
    elif [ -x "$here/target/debug/akte" ]; then echo "$here/target/debug/akte"
    else command -v akte || die "no akte binary (cargo build, or set AKTE_BIN)"
    fi
}

up() { # dir n
    local dir=$1 n=${2:-3} bin
    bin=$(akte_bin)
    start_s3 "$dir" moto >/dev/null
    set -a; . "$dir/s3.env"; set +a
    export AKTE_STORE=s3://akte-lock/akte AKTE_KEY_STORE=s3://akte-keys/akte
    export AKTE_ADMIN_TOKEN=${AKTE_ADMIN_TOKEN:-akte_cluster_admin_token_0123456789abcdef0123456789}
    : >"$dir/nodes"
    for i in $(seq 1 "$n"); do
        local port
        port=$(free_port)
        "$bin" --data "$dir/node$i" serve --listen "127.0.0.1:$port" >"$dir/node$i.log" 2>&1 &
        echo $! >"$dir/node$i.pid"
        # The first node bootstraps the empty store; the others join it.
        wait_port "$port" 60 || die "node $i did not start (see $dir/node$i.log)"
        echo "http://127.0.0.1:$port" >>"$dir/nodes"
    done
    cat "$dir/nodes"
}

down() {
    local dir=$1
    for f in "$dir"/node*.pid "$dir"/s3.pid; do
        [ -f "$f" ] || continue
        kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

case "${1:-}" in
install) shift; install "$@" ;;
s3) shift; [ $# -ge 1 ] || die "usage: $0 s3 DIR [moto|s3s-fs]"; start_s3 "$@" ;;
up) shift; [ $# -ge 1 ] || die "usage: $0 up DIR [N]"; up "$@" ;;
down) shift; [ $# -ge 1 ] || die "usage: $0 down DIR"; down "$@" ;;
*) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
