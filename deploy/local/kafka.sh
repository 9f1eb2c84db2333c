#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) under .local/kafka.
#   deploy/local/kafka.sh start|stop|status|bootstrap
# Jars come from Maven Central (deploy/kafka/pom.xml); see shared/reference/kafka-local.md.
# Clients use 127.0.0.1:19092; the controller listens on 127.0.0.1:19093.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BASE="$ROOT/.local/kafka"
LIBS="$BASE/libs"
DATA="$BASE/data"
LOGS="$BASE/logs"
CONF="$BASE/config"
PIDFILE="$BASE/kafka.pid"
POM="$ROOT/deploy/kafka/pom.xml"
BOOTSTRAP=127.0.0.1:19092
CONTROLLER=127.0.0.1:19093
READY_TIMEOUT="${THROUGHLINE_KAFKA_READY_TIMEOUT:-90}"
JVM_OPTS=(-Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$CONF/log4j.properties" "-Dkafka.logs.dir=$LOGS")
TOOL_OPTS=(-Xmx256m -Djava.awt.headless=true "-Dlog4j.configuration=file:$CONF/log4j.properties"
    "-Dkafka.logs.dir=$LOGS")

say() { echo "kafka: $*"; }
die() { echo "kafka: ERROR: $*" >&2; exit 1; }

ensure_tools() {
    local need=()
    command -v java >/dev/null || need+=(default-jre-headless)
    command -v mvn >/dev/null || need+=(maven)
    [[ ${#need[@]} -eq 0 ]] && return 0
    [[ $EUID -eq 0 ]] || die "missing ${need[*]}; run as root or: apt-get install ${need[*]}"
    mkdir -p "$ROOT/.local"
    # One apt at a time (postgres.sh may be installing too); 'apt-get update' once per hour at most.
    (
        flock -w 900 8 || die "timed out waiting for the apt lock"
        local stamp="$ROOT/.local/apt-updated"
        if [[ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]]; then
            say "apt-get update"
            apt-get update -qq >>"$ROOT/.local/apt.log" 2>&1 \
                || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get update failed"; }
            touch "$stamp"
        fi
        say "installing ${need[*]} (log: .local/apt.log)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
            >>"$ROOT/.local/apt.log" 2>&1 \
            || { tail -20 "$ROOT/.local/apt.log" >&2; die "apt-get install ${need[*]} failed"; }
    ) 8>"$ROOT/.local/apt.lock"
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        die "java/mvn still missing after install"
    fi
}

# The jars are complete when they were resolved from the current pom.xml (stamp = its hash).
ensure_jars() {
    local want
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    if [[ "$(cat "$LIBS/.pom.sha256" 2>/dev/null)" == "$want" ]] && compgen -G "$LIBS/kafka_2.13-*.jar" >/dev/null; then
        return 0
    fi
    ensure_tools
    say "resolving broker jars with Maven (deploy/kafka/pom.xml)"
    rm -rf "$LIBS.tmp"
    mvn -B -q -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$LIBS.tmp" >"$BASE/mvn.log" 2>&1 \
        || { tail -30 "$BASE/mvn.log" >&2; die "mvn dependency:copy-dependencies failed (log: $BASE/mvn.log)"; }
    compgen -G "$LIBS.tmp/kafka_2.13-*.jar" >/dev/null || die "mvn ran but no kafka_2.13 jar in $LIBS.tmp"
    echo "$want" >"$LIBS.tmp/.pom.sha256"
    rm -rf "$LIBS"
    mv "$LIBS.tmp" "$LIBS"
}

write_config() {
    # Rewritten at every start: the file here is the source of truth.
    cat >"$CONF/server.properties" <<EOF
# Written by deploy/local/kafka.sh; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$CONTROLLER
listeners=PLAINTEXT://$BOOTSTRAP,CONTROLLER://$CONTROLLER
advertised.listeners=PLAINTEXT://$BOOTSTRAP
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.cleaner.dedupe.buffer.size=33554432
EOF
    cat >"$CONF/log4j.properties" <<EOF
# Written by deploy/local/kafka.sh. WARN and above, to the console (kafka.out) and server.log.
log4j.rootLogger=WARN, stdout, file
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=\${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# The start and stop lines, so the log shows when the broker was up.
log4j.logger.kafka.server.KafkaRaftServer=INFO
EOF
}

format_storage() {
    [[ -f "$DATA/meta.properties" ]] && return 0
    local id
    id="$(java "${TOOL_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$LOGS/storage-tool.log" | tail -1)"
    [[ -n "$id" ]] || die "StorageTool random-uuid printed nothing (log: $LOGS/storage-tool.log)"
    echo "$id" >"$BASE/cluster.id"
    say "formatting $DATA (cluster id $id)"
    java "${TOOL_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format -t "$id" \
        -c "$CONF/server.properties" --ignore-formatted >>"$LOGS/storage-tool.log" 2>&1 \
        || { tail -20 "$LOGS/storage-tool.log" >&2; die "StorageTool format failed"; }
}

# The recorded PID, only if that process is still our broker (PIDs get reused).
broker_pid() {
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" \
        | grep -q "kafka.Kafka $CONF/server.properties" && echo "$pid"
}

python_with_aiokafka() {
    local py
    for py in "$ROOT/.venv/bin/python" python3; do
        if command -v "$py" >/dev/null && "$py" -c 'import aiokafka' 2>/dev/null; then
            echo "$py"
            return 0
        fi
    done
    die "no Python with aiokafka for the readiness check: run deploy/local/up.sh first"
}

ready() {  # ready TIMEOUT [PID]
    local py
    py="$(python_with_aiokafka)" || return 2
    "$py" "$ROOT/deploy/local/kafka_ready.py" --bootstrap "$BOOTSTRAP" --timeout "$1" ${2:+--pid "$2"}
}

port_holder() {
    command -v ss >/dev/null || return 0
    ss -Hltnp "( sport = :19092 or sport = :19093 )" 2>/dev/null | head -1
}

start() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock -w 180 9 || die "another kafka.sh holds $BASE/.lock"
    local pid
    pid="$(broker_pid || true)"
    if [[ -n "$pid" ]] && ready 5 "$pid" >/dev/null 2>&1; then
        say "ready at $BOOTSTRAP (pid $pid, already running)"
        return 0
    fi
    mkdir -p "$DATA" "$LOGS" "$CONF"
    ensure_jars
    command -v java >/dev/null || ensure_tools
    write_config
    format_storage
    if [[ -z "$pid" ]]; then
        local holder
        holder="$(port_holder || true)"
        [[ -z "$holder" ]] || die "port 19092/19093 is taken by another process: $holder"
        cd "$BASE"
        # setsid: the broker outlives this shell's process group; 9>&-: it must not hold our lock.
        (exec setsid java "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$CONF/server.properties") \
            </dev/null >>"$LOGS/kafka.out" 2>&1 9>&- &
        echo $! >"$PIDFILE"
        for _ in 1 2 3 4 5 6 7 8 9 10; do  # until the subshell has exec'd into the JVM
            pid="$(broker_pid || true)"
            [[ -n "$pid" ]] && break
            sleep 0.2
        done
        [[ -n "$pid" ]] || { tail -20 "$LOGS/kafka.out" >&2; die "the broker process did not start"; }
        say "started pid $pid, waiting for a metadata answer (up to ${READY_TIMEOUT}s)"
    fi
    if ! ready "$READY_TIMEOUT" "$pid"; then
        tail -30 "$LOGS/kafka.out" >&2 || true
        die "broker did not answer metadata requests at $BOOTSTRAP (logs: $LOGS)"
    fi
    say "ready at $BOOTSTRAP (pid $pid)"
}

stop() {
    mkdir -p "$BASE"
    exec 9>"$BASE/.lock"
    flock -w 180 9 || die "another kafka.sh holds $BASE/.lock"
    local pid
    pid="$(broker_pid || true)"
    if [[ -n "$pid" ]]; then
        say "stopping pid $pid (SIGTERM)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "pid $pid still running after 30s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    rm -f "$PIDFILE"
    say "stopped"
}

status() {
    local pid
    pid="$(broker_pid || true)"
    if [[ -z "$pid" ]]; then
        say "stopped"
        return 3
    elif ready 5 "$pid" >/dev/null 2>&1; then
        say "running at $BOOTSTRAP (pid $pid, data $DATA)"
    else
        say "running (pid $pid) but not answering metadata at $BOOTSTRAP"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    bootstrap) echo "$BOOTSTRAP" ;;
    *) echo "usage: $0 start|stop|status|bootstrap" >&2; exit 2 ;;
esac
