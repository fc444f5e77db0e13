#!/usr/bin/env bash
# Local development stack: a single-node Kafka 4 (KRaft broker+controller, jars from Maven
# Central via stack/pom.xml) and a Redis server, both on 127.0.0.1, all state under .state/.
#
#   scripts/stack.sh up [kafka|redis]     start (idempotent), wait until ready, print the URLs
#   scripts/stack.sh down [kafka|redis]   stop by PID: TERM, wait, KILL
#   scripts/stack.sh status               report; exit 0 only if both services run
#   scripts/stack.sh running SERVICE      exit 0 if this checkout's SERVICE process is alive
#   scripts/stack.sh logs [kafka|redis] [-f]
#
# KAFKA_BOOTSTRAP / REDIS_URL already set in the environment: that service is used as is
# (only waited for), nothing is started. Ports, state directory, the Kafka jars' directory and
# an optional SASL listener are set by GRAPHSENTRY_* variables, so a second stack (the fault
# tests' own) runs beside the first. See docs/stack.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${GRAPHSENTRY_STATE_DIR:-$ROOT/.state}"
KAFKA_PORT="${GRAPHSENTRY_KAFKA_PORT:-9092}"
REDIS_PORT="${GRAPHSENTRY_REDIS_PORT:-6379}"
READY_TIMEOUT="${GRAPHSENTRY_STACK_TIMEOUT:-90}"
STOP_TIMEOUT="${GRAPHSENTRY_STOP_TIMEOUT:-30}"
KAFKA_JVM_OPTS="${GRAPHSENTRY_KAFKA_JVM_OPTS:--Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20}"

POM="$ROOT/stack/pom.xml"
LOG4J_CONFIG="$ROOT/stack/log4j2.xml"
LIBS="${GRAPHSENTRY_KAFKA_LIBS:-$STATE/kafka/libs}"
KAFKA_DATA="$STATE/kafka/data"
KAFKA_PROPS="$STATE/kafka/server.properties"
REDIS_DIR="$STATE/redis"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
PYTHON="$ROOT/.venv/bin/python"
SERVICES=(kafka redis)

say() { echo "stack: $*" >&2; }
die() { say "error: $*"; exit 1; }

check_port_number() {
    if ! [[ "$2" =~ ^[0-9]+$ ]] || ((10#$2 < 1 || 10#$2 > 65535)); then
        die "$1 must be a TCP port, got '$2'"
    fi
}

check_port_number GRAPHSENTRY_KAFKA_PORT "$KAFKA_PORT"
check_port_number GRAPHSENTRY_REDIS_PORT "$REDIS_PORT"
CONTROLLER_PORT="${GRAPHSENTRY_KAFKA_CONTROLLER_PORT:-$((10#$KAFKA_PORT + 1))}"
check_port_number GRAPHSENTRY_KAFKA_CONTROLLER_PORT "$CONTROLLER_PORT"
# Optional SASL_PLAINTEXT listener (PLAIN mechanism, one user) for authentication tests.
SASL_PORT="${GRAPHSENTRY_KAFKA_SASL_PORT:-}"
SASL_USER="${GRAPHSENTRY_KAFKA_SASL_USER:-graphsentry}"
SASL_PASSWORD="${GRAPHSENTRY_KAFKA_SASL_PASSWORD:-graphsentry-secret}"
[[ -z "$SASL_PORT" ]] || check_port_number GRAPHSENTRY_KAFKA_SASL_PORT "$SASL_PORT"
[[ "$SASL_USER$SASL_PASSWORD" =~ ^[A-Za-z0-9._-]+$ ]] \
    || die "GRAPHSENTRY_KAFKA_SASL_USER / _PASSWORD: letters, digits, '.', '_' and '-' only"

check_service_name() {
    [[ "$1" == kafka || "$1" == redis ]] || die "unknown service '$1' (expected kafka or redis)"
}

# --- processes -------------------------------------------------------------------------

# A zombie still answers `kill -0`; treat it as gone (PID 1 of a container may not reap).
is_alive() {
    local pid="$1" state
    [[ -r "/proc/$pid/stat" ]] || return 1
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

cmdline_of() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | sed 's/ *$//' || true; }

# The recorded PID of SERVICE if that process is alive and is really ours (guards PID reuse).
pid_of() {
    local service="$1" pidfile="$PIDS/$1.pid" pid marker
    [[ -f "$pidfile" ]] || return 1
    pid="$(cat "$pidfile" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] && is_alive "$pid" || return 1
    case "$service" in
        kafka) marker="$KAFKA_PROPS" ;;
        redis) marker="redis-server" ;;
    esac
    [[ "$(cmdline_of "$pid")" == *"$marker"* ]] || return 1
    echo "$pid"
}

recorded_port() { cat "$PIDS/$1.port" 2>/dev/null || true; }

# "PID (command line)" of whoever listens on PORT, empty if nobody does.
port_owner() {
    local port="$1" line pid
    if command -v ss >/dev/null 2>&1; then
        line="$(ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1)"
        [[ -n "$line" ]] || return 0
        pid="$(grep -oE 'pid=[0-9]+' <<<"$line" | head -n 1 | cut -d= -f2)"
        if [[ -n "$pid" ]]; then
            echo "pid $pid ($(cmdline_of "$pid" | cut -c1-400))"
        else
            echo "an unknown process"
        fi
    elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "an unknown process (ss is not installed)"
    fi
}

ensure_port_free() {
    local port="$1" what="$2" owner
    owner="$(port_owner "$port")"
    [[ -z "$owner" ]] && return 0
    die "port $port ($what) is already in use by $owner.
    Stop that process (if it is another checkout's stack: 'scripts/stack.sh down' there),
    or pick other ports: GRAPHSENTRY_KAFKA_PORT=... GRAPHSENTRY_REDIS_PORT=... scripts/stack.sh up"
}

# --- readiness -------------------------------------------------------------------------

# Polls until Kafka answers a metadata request / Redis answers PING. Exit 2 = process died.
wait_ready() {
    local service="$1" target="$2" pid="${3:-0}"
    "$PYTHON" - "$service" "$target" "$READY_TIMEOUT" "$pid" <<'PY'
import os
import sys
import time

service, target, timeout, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
deadline = time.monotonic() + timeout


def process_alive() -> bool:
    if pid <= 0:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


if service == "kafka":
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": target, "log_level": 0})

    def probe() -> None:
        metadata = admin.list_topics(timeout=max(0.5, min(3.0, deadline - time.monotonic())))
        if not metadata.brokers:
            raise RuntimeError("metadata lists no broker yet")

    errors: tuple[type[BaseException], ...] = (KafkaException, RuntimeError)
else:
    import redis

    client = redis.Redis.from_url(target, socket_connect_timeout=1, socket_timeout=2)

    def probe() -> None:
        client.ping()

    errors = (redis.RedisError, OSError)

last_error = "no answer"
while True:
    try:
        probe()
        sys.exit(0)
    except errors as exc:
        last_error = str(exc) or type(exc).__name__
    if not process_alive():
        print(f"{service}: process {pid} exited during startup", file=sys.stderr)
        sys.exit(2)
    if time.monotonic() >= deadline:
        print(f"{service} at {target} not ready after {timeout:.0f}s: {last_error}",
              file=sys.stderr)
        sys.exit(1)
    time.sleep(0.3)
PY
}

show_log_tail() {
    local file
    for file in "$@"; do
        [[ -s "$file" ]] || continue
        say "last lines of $file:"
        tail -n 25 "$file" | sed 's/^/    /' >&2
    done
}

# --- kafka -----------------------------------------------------------------------------

resolve_kafka_jars() {
    local want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    [[ -f "$LIBS/.pom.sha256" && "$(cat "$LIBS/.pom.sha256")" == "$want" ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to fetch the Kafka jars (Debian: apt-get install maven)"
    say "resolving Kafka jars with Maven into $LIBS"
    rm -rf "$LIBS"
    if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS" >"$LOGS/maven.log" 2>&1; then
        show_log_tail "$LOGS/maven.log"
        die "Maven could not resolve the Kafka jars (full log: $LOGS/maven.log)"
    fi
    echo "$want" >"$LIBS/.pom.sha256"
}

# The JVM command line shared by the storage tool and the broker (options word-split on
# purpose); the classpath wildcard is expanded by java, not by the shell.
# shellcheck disable=SC2206
KAFKA_JAVA=(java $KAFKA_JVM_OPTS -Dlog4j2.configurationFile="$LOG4J_CONFIG"
    -Dkafka.logs.dir="$LOGS" -cp "$LIBS/*")

write_kafka_config() {
    local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT"
    local advertised="PLAINTEXT://127.0.0.1:$KAFKA_PORT"
    local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" sasl=""
    if [[ -n "$SASL_PORT" ]]; then
        listeners+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
        advertised+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
        protocols+=",SASL_PLAINTEXT:SASL_PLAINTEXT"
        sasl="sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\" user_$SASL_USER=\"$SASL_PASSWORD\";"
    fi
    cat >"$KAFKA_PROPS" <<EOF
# Written by scripts/stack.sh at every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
$sasl
log.dirs=$KAFKA_DATA
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
message.max.bytes=4194304
replica.fetch.max.bytes=4194304
log.retention.ms=-1
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
EOF
}

format_kafka_storage() {
    [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
    local cluster_id_file="$STATE/kafka/cluster.id"
    if [[ ! -s "$cluster_id_file" ]]; then
        if ! "${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid >"$cluster_id_file" \
            2>>"$LOGS/kafka.out"; then
            rm -f "$cluster_id_file"
            show_log_tail "$LOGS/kafka.out"
            die "kafka.tools.StorageTool random-uuid failed"
        fi
    fi
    say "formatting Kafka storage in $KAFKA_DATA"
    if ! "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$(cat "$cluster_id_file")" \
        -c "$KAFKA_PROPS" >>"$LOGS/kafka.out" 2>&1; then
        show_log_tail "$LOGS/kafka.out"
        die "formatting Kafka storage failed"
    fi
}

# Starts the broker in the background (no wait); prints its PID.
start_kafka() {
    local pid port
    if pid="$(pid_of kafka)"; then
        port="$(recorded_port kafka)"
        [[ -z "$port" || "$port" == "$KAFKA_PORT" ]] \
            || die "kafka already runs on port $port (pid $pid); run 'scripts/stack.sh down' to change ports"
        say "kafka already running (pid $pid)"
        echo "$pid"
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "Java 17+ is needed for Kafka (Debian: apt-get install openjdk-17-jre-headless)"
    resolve_kafka_jars
    write_kafka_config
    format_kafka_storage
    say "starting kafka on 127.0.0.1:$KAFKA_PORT (controller $CONTROLLER_PORT)"
    # Background jobs of a non-interactive shell ignore SIGINT; nohup adds SIGHUP, so a
    # Ctrl-C in the calling terminal does not take the broker down half-way.
    nohup "${KAFKA_JAVA[@]}" kafka.Kafka "$KAFKA_PROPS" >>"$LOGS/kafka.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDS/kafka.pid"
    echo "$KAFKA_PORT" >"$PIDS/kafka.port"
    echo "$pid"
}

# --- redis -----------------------------------------------------------------------------

ensure_redis_installed() {
    command -v redis-server >/dev/null 2>&1 && return 0
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "redis-server not found: installing it with apt-get"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends redis-server; } >"$LOGS/apt.log" 2>&1; then
            show_log_tail "$LOGS/apt.log"
            die "apt-get install redis-server failed"
        fi
    else
        die "redis-server not found; install it (Debian: sudo apt-get install redis-server)"
    fi
}

start_redis() {
    local pid port persistence=(--save "" --appendonly no)
    if pid="$(pid_of redis)"; then
        port="$(recorded_port redis)"
        [[ -z "$port" || "$port" == "$REDIS_PORT" ]] \
            || die "redis already runs on port $port (pid $pid); run 'scripts/stack.sh down' to change ports"
        say "redis already running (pid $pid)"
        echo "$pid"
        return 0
    fi
    ensure_redis_installed
    [[ "${GRAPHSENTRY_REDIS_PERSIST:-0}" == 1 ]] && persistence=(--appendonly yes)
    say "starting redis on 127.0.0.1:$REDIS_PORT"
    nohup redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize no \
        --dir "$REDIS_DIR" --logfile "$LOGS/redis.log" --pidfile "$PIDS/redis.pid" \
        "${persistence[@]}" >>"$LOGS/redis.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PIDS/redis.pid"
    echo "$REDIS_PORT" >"$PIDS/redis.port"
    echo "$pid"
}

# --- commands --------------------------------------------------------------------------

await_service() {
    local service="$1" target="$2" pid="$3" rc=0
    wait_ready "$service" "$target" "$pid" || rc=$?
    ((rc == 0)) && return 0
    case "$service" in
        kafka) show_log_tail "$LOGS/kafka.log" "$LOGS/kafka.out" ;;
        redis) show_log_tail "$LOGS/redis.log" "$LOGS/redis.out" ;;
    esac
    die "$service did not become ready (timeout ${READY_TIMEOUT}s, GRAPHSENTRY_STACK_TIMEOUT)"
}

cmd_up() {
    local wanted=("$@") kafka_pid=0 redis_pid=0 kafka_target redis_target service
    ((${#wanted[@]})) || wanted=("${SERVICES[@]}")
    for service in "${wanted[@]}"; do check_service_name "$service"; done
    mkdir -p "$LOGS" "$PIDS" "$KAFKA_DATA" "$REDIS_DIR" "$(dirname "$LIBS")"
    "$ROOT/scripts/bootstrap.sh"

    kafka_target="${KAFKA_BOOTSTRAP:-127.0.0.1:$KAFKA_PORT}"
    redis_target="${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
    # All port checks before anything starts, so a conflict leaves nothing half-started.
    if [[ " ${wanted[*]} " == *" kafka "* && -z "${KAFKA_BOOTSTRAP:-}" ]] && ! pid_of kafka >/dev/null; then
        ensure_port_free "$KAFKA_PORT" "Kafka clients"
        ensure_port_free "$CONTROLLER_PORT" "Kafka controller"
        [[ -z "$SASL_PORT" ]] || ensure_port_free "$SASL_PORT" "Kafka SASL clients"
    fi
    if [[ " ${wanted[*]} " == *" redis "* && -z "${REDIS_URL:-}" ]] && ! pid_of redis >/dev/null; then
        ensure_port_free "$REDIS_PORT" "Redis"
    fi
    # Start everything first, then wait: the JVM boots while Redis answers.
    if [[ " ${wanted[*]} " == *" kafka "* ]]; then
        if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then
            say "using KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP from the environment (not starting kafka)"
        else
            kafka_pid="$(start_kafka)"
        fi
    fi
    if [[ " ${wanted[*]} " == *" redis "* ]]; then
        if [[ -n "${REDIS_URL:-}" ]]; then
            say "using REDIS_URL=$REDIS_URL from the environment (not starting redis)"
        else
            redis_pid="$(start_redis)"
        fi
        await_service redis "$redis_target" "$redis_pid"
    fi
    if [[ " ${wanted[*]} " == *" kafka "* ]]; then
        await_service kafka "$kafka_target" "$kafka_pid"
        echo "KAFKA_BOOTSTRAP=$kafka_target"
    fi
    [[ " ${wanted[*]} " == *" redis "* ]] && echo "REDIS_URL=$redis_target"
    return 0
}

stop_service() {
    local service="$1" pid waited=0
    if ! pid="$(pid_of "$service")"; then
        rm -f "$PIDS/$service.pid" "$PIDS/$service.port"
        say "$service: not running"
        return 0
    fi
    say "stopping $service (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    while is_alive "$pid" && ((waited < STOP_TIMEOUT * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if is_alive "$pid"; then
        say "$service did not stop within ${STOP_TIMEOUT}s: sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        while is_alive "$pid"; do sleep 0.1; done
    fi
    rm -f "$PIDS/$service.pid" "$PIDS/$service.port"
}

cmd_down() {
    local wanted=("$@") service
    ((${#wanted[@]})) || wanted=("${SERVICES[@]}")
    for service in "${wanted[@]}"; do check_service_name "$service"; done
    for service in "${wanted[@]}"; do stop_service "$service"; done
}

cmd_status() {
    local service pid all_up=0 env_name
    for service in "${SERVICES[@]}"; do
        env_name=KAFKA_BOOTSTRAP
        [[ "$service" == redis ]] && env_name=REDIS_URL
        if pid="$(pid_of "$service")"; then
            echo "$service: running, pid $pid, port $(recorded_port "$service")"
        elif [[ -n "${!env_name:-}" ]]; then
            echo "$service: external, $env_name=${!env_name}"
        else
            echo "$service: stopped"
            all_up=3
        fi
    done
    return "$all_up"
}

cmd_logs() {
    local follow=0 files=() arg
    for arg in "$@"; do
        case "$arg" in
            -f | --follow) follow=1 ;;
            kafka) files+=("$LOGS/kafka.log" "$LOGS/kafka.out") ;;
            redis) files+=("$LOGS/redis.log") ;;
            *) die "usage: scripts/stack.sh logs [kafka|redis] [-f]" ;;
        esac
    done
    ((${#files[@]})) || files=("$LOGS/kafka.log" "$LOGS/kafka.out" "$LOGS/redis.log")
    local existing=()
    for arg in "${files[@]}"; do [[ -f "$arg" ]] && existing+=("$arg"); done
    ((${#existing[@]})) || die "no logs yet under $LOGS"
    if ((follow)); then
        exec tail -n 40 -F "${existing[@]}"
    fi
    tail -n 40 "${existing[@]}"
}

main() {
    local command="${1:-}"
    (($#)) && shift
    case "$command" in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        status) cmd_status ;;
        running)
            (($# == 1)) || die "usage: scripts/stack.sh running kafka|redis"
            check_service_name "$1"
            pid_of "$1" >/dev/null
            ;;
        logs) cmd_logs "$@" ;;
        *)
            sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
            exit 2
            ;;
    esac
}

main "$@"
