#!/usr/bin/env bash
# Run a real single-node Apache Kafka 4.x broker (KRaft, broker+controller in one
# JVM) on 127.0.0.1 for development and CI. The official broker jars come from
# Maven Central via scripts/kafka-broker/pom.xml; no Kafka tarball or Docker needed.
#
# Usage: scripts/kafka.sh up|down|status|logs
#
#   up      fetch jars (once), write config, format storage (once), start the
#           broker in the background and wait until it serves metadata.
#           Harmless if a broker started by this script is already running.
#   down    stop the broker recorded in the pid file (SIGTERM, then SIGKILL after
#           KAFKA_STOP_TIMEOUT seconds). Exits 0 if nothing was running.
#   status  exit 0 if the broker is running, 1 otherwise.
#   logs    follow the broker log (Ctrl-C to stop); prints its tail when not a tty.
#
# Environment:
#   KAFKA_HOME_DIR         state dir (default: <repo>/.kafka); jars, config, data, logs
#   KAFKA_PORT             client listener port (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
#   KAFKA_PYTHON           python used for the readiness probe if it can import
#                          kafka-python (default python3); optional
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 90)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM (default 30)
#   KAFKA_HEAP_OPTS        JVM heap flags (default "-Xms256m -Xmx512m")
#   JAVA_HOME              if set, $JAVA_HOME/bin/java is used; Java 17+ required
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka-broker/pom.xml"

KAFKA_HOME_DIR="${KAFKA_HOME_DIR:-$REPO_ROOT/.kafka}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PYTHON="${KAFKA_PYTHON:-python3}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
HOST=127.0.0.1

# Everything lives under the state dir; make it absolute so that paths written
# into server.properties (and matched against the broker's command line) do not
# depend on the caller's cwd. Only `up` creates it.
if [[ -d "$KAFKA_HOME_DIR" ]]; then
    KAFKA_HOME_DIR="$(cd "$KAFKA_HOME_DIR" && pwd)"
elif [[ "$KAFKA_HOME_DIR" != /* ]]; then
    KAFKA_HOME_DIR="$PWD/$KAFKA_HOME_DIR"
fi
init_paths() {
    LIBS_DIR="$KAFKA_HOME_DIR/libs"
    LIBS_MARKER="$LIBS_DIR/.complete"   # written only after a successful copy
    DATA_DIR="$KAFKA_HOME_DIR/data"
    LOG_DIR="$KAFKA_HOME_DIR/logs"
    CONFIG="$KAFKA_HOME_DIR/server.properties"
    LOG4J_CONFIG="$KAFKA_HOME_DIR/log4j2.xml"
    CLUSTER_ID_FILE="$KAFKA_HOME_DIR/cluster-id"
    PID_FILE="$KAFKA_HOME_DIR/kafka.pid"
    SERVER_LOG="$LOG_DIR/server.log"    # log4j2 output (see write_log4j_config)
    CONSOLE_LOG="$LOG_DIR/kafka.out"    # JVM stdout/stderr: crashes before log4j is up
}
init_paths

# Printed in the log by KafkaRaftServer once broker and controller are up.
STARTED_MARKER='Kafka Server started'

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- prerequisites ---------------------------------------------------------------

java_bin() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        echo "$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        command -v java
    else
        die "java not found (install a JDK 17+ or set JAVA_HOME); Kafka 4.x brokers need Java 17+"
    fi
}

check_java() {
    JAVA="$(java_bin)"
    # `java -version` prints e.g. 'openjdk version "17.0.15" ...' (or "1.8.0_x" for 8).
    local v major
    v="$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    major="${v%%.*}"
    if [[ "$major" == 1 ]]; then major="$(echo "$v" | cut -d. -f2)"; fi
    if [[ "$major" =~ ^[0-9]+$ ]] && (( major < 17 )); then
        die "$JAVA is Java $v; Kafka 4.x brokers need Java 17+ (set JAVA_HOME)"
    fi
}

# --- jars ------------------------------------------------------------------------

# The marker stores a hash of the pom, so bumping the Kafka version in the pom
# refetches the jars, while an unchanged pom never runs Maven again.
pom_hash() { cksum <"$POM" | awk '{print $1 "-" $2}'; }

ensure_jars() {
    if [[ -f "$LIBS_MARKER" && "$(cat "$LIBS_MARKER")" == "$(pom_hash)" ]]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 \
        || die "mvn (Apache Maven) not found; it is needed once to fetch the Kafka jars into $LIBS_DIR"
    log "fetching Kafka jars with Maven into $LIBS_DIR (first run only)"
    # Copy into a scratch dir and swap it in, so an interrupted download never
    # leaves a half-filled libs/ that looks usable.
    local tmp="$KAFKA_HOME_DIR/libs.tmp"
    rm -rf "$tmp"
    # Maven's output (even with -q it emits stray ANSI resets) goes to a file and
    # is shown only on failure.
    local mvn_log="$LOG_DIR/maven.log"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
        cat "$mvn_log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch the Kafka jars (output above, also in $mvn_log)"
    fi
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    pom_hash >"$LIBS_MARKER"
}

# --- config ----------------------------------------------------------------------

write_server_properties() {
    # Rewritten on every `up` so port changes take effect; data stays in log.dirs.
    cat >"$CONFIG" <<EOF
# Generated by scripts/kafka.sh; edits are overwritten on the next 'up'.
process.roles=broker,controller
node.id=1
# KRaft 4.x "dynamic quorum" style: the storage is formatted with --standalone,
# which records this node as the sole voter; clients of the quorum find it here.
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR

# Single node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Dev/CI: no 3 s wait before the first consumer group rebalance.
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
num.partitions=1
EOF
}

write_log4j_config() {
    # Kafka 4.x logs through log4j2. Everything goes to one rolling file in the
    # state dir, nothing to the console, so `up` stays quiet.
    cat >"$LOG4J_CONFIG" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by scripts/kafka.sh; overwritten on the next 'up'. -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="file" fileName="$SERVER_LOG" filePattern="$LOG_DIR/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="20 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="file"/></Root>
    <!-- Very chatty at INFO and of no use for a dev broker. -->
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
    <Logger name="kafka.log.LogCleaner" level="warn"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="warn"/>
    <Logger name="org.apache.kafka.clients" level="warn"/>
  </Loggers>
</Configuration>
EOF
}

run_class() {
    "$JAVA" -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$LOG4J_CONFIG" "$@"
}

ensure_formatted() {
    # Format once. Changing KAFKA_CONTROLLER_PORT later is fine: a single voter
    # elects itself whatever endpoint the bootstrap voter record holds (tested).
    if [[ -f "$DATA_DIR/meta.properties" ]]; then return 0; fi
    if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
        run_class kafka.tools.StorageTool random-uuid >"$CLUSTER_ID_FILE.tmp"
        mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
    fi
    log "formatting KRaft storage in $DATA_DIR (cluster id $(cat "$CLUSTER_ID_FILE"))"
    # Kafka 4.x: --standalone bootstraps a one-voter dynamic controller quorum
    # (the config must then use controller.quorum.bootstrap.servers, not .voters).
    run_class kafka.tools.StorageTool format --standalone \
        --cluster-id "$(cat "$CLUSTER_ID_FILE")" --config "$CONFIG" >>"$CONSOLE_LOG" 2>&1 \
        || die "storage format failed; see $CONSOLE_LOG"
}

# --- process tracking ------------------------------------------------------------

# Prints the PID from the pid file if that process is alive and really is our
# broker (guards against a stale pid file whose PID was reused by something else).
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid args
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    args="$(ps -ww -p "$pid" -o args= 2>/dev/null)" || return 1
    [[ "$args" == *kafka.Kafka*"$CONFIG"* ]] || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# --- readiness -------------------------------------------------------------------

# Metadata round trip with kafka-python; returns 2 if kafka-python is unavailable.
python_probe() {
    command -v "$KAFKA_PYTHON" >/dev/null 2>&1 || return 2
    "$KAFKA_PYTHON" - "$HOST:$KAFKA_PORT" <<'EOF' 2>/dev/null
import sys
try:
    from kafka import KafkaAdminClient
except ImportError:
    sys.exit(2)
try:
    admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    try:
        ok = bool(admin.describe_cluster().get("brokers"))
    finally:
        admin.close()
except Exception:
    ok = False
sys.exit(0 if ok else 1)
EOF
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + KAFKA_START_TIMEOUT)) probe_failures=0 rc
    while (( SECONDS < deadline )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            log "broker exited during startup; last lines of its logs:"
            tail -n 30 "$CONSOLE_LOG" "$SERVER_LOG" >&2 2>/dev/null || true
            return 1
        fi
        # The "started" log line plus an open client port are enough on their own
        # (kafka-python may not be installed yet). When kafka-python is importable,
        # a metadata round trip additionally proves the broker answers requests.
        if grep -q "$STARTED_MARKER" "$SERVER_LOG" 2>/dev/null && port_open "$KAFKA_PORT"; then
            rc=0; python_probe || rc=$?
            (( rc == 0 || rc == 2 )) && return 0
            # A probe that keeps failing while the broker says it started points at
            # the client side (e.g. an odd kafka-python), not the broker: don't hang.
            if (( ++probe_failures >= 15 )); then
                log "warning: broker started but the kafka-python metadata probe keeps failing"
                return 0
            fi
        fi
        sleep 1
    done
    log "broker not ready after ${KAFKA_START_TIMEOUT}s; see $SERVER_LOG (it is left running; 'down' stops it)"
    return 1
}

# --- commands --------------------------------------------------------------------

cmd_up() {
    local pid
    mkdir -p "$KAFKA_HOME_DIR"
    KAFKA_HOME_DIR="$(cd "$KAFKA_HOME_DIR" && pwd)"
    init_paths
    # Serialise concurrent `up`s on the same state dir (two terminals, make -j).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$KAFKA_HOME_DIR/.lock"
        flock 9
    fi
    if pid="$(running_pid)"; then
        log "already running (pid $pid) on $HOST:$KAFKA_PORT; state in $KAFKA_HOME_DIR"
        return 0
    fi
    rm -f "$PID_FILE"   # stale: the process it names is gone
    check_java
    if port_open "$KAFKA_PORT"; then
        die "port $KAFKA_PORT on $HOST is already in use by another process (set KAFKA_PORT)"
    fi
    if port_open "$KAFKA_CONTROLLER_PORT"; then
        die "port $KAFKA_CONTROLLER_PORT on $HOST is already in use (set KAFKA_CONTROLLER_PORT)"
    fi
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    # Start from an empty log so wait_ready cannot match the "started" line of a
    # previous run (log4j appends); keep the last run's log for post-mortems.
    if [[ -f "$SERVER_LOG" ]]; then mv "$SERVER_LOG" "$LOG_DIR/previous-server.log"; fi
    : >"$CONSOLE_LOG"
    ensure_jars
    write_server_properties
    write_log4j_config
    ensure_formatted

    log "starting Kafka broker on $HOST:$KAFKA_PORT (controller $HOST:$KAFKA_CONTROLLER_PORT)"
    # The broker outlives this script: run it from the state dir so nothing it
    # drops in its cwd lands in the caller's (e.g. the repo root).
    cd "$KAFKA_HOME_DIR"
    # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is intentionally word-split
    nohup "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:ErrorFile="$LOG_DIR/hs_err_pid%p.log" -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG" \
        </dev/null >>"$CONSOLE_LOG" 2>&1 9>&- &   # 9>&-: don't hand the lock to the broker
    pid=$!
    echo "$pid" >"$PID_FILE"

    local start=$SECONDS
    wait_ready "$pid" || exit 1
    log "ready in $((SECONDS - start))s (pid $pid); bootstrap servers: $HOST:$KAFKA_PORT"
}

cmd_down() {
    local pid
    if ! pid="$(running_pid)"; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    log "stopping broker (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        log "running (pid $pid) on $HOST:$KAFKA_PORT; state in $KAFKA_HOME_DIR"
        return 0
    fi
    log "not running"
    return 1
}

cmd_logs() {
    [[ -f "$SERVER_LOG" ]] || die "no broker log yet at $SERVER_LOG"
    # Follow in a terminal; just dump the tail when piped (e.g. in CI after a failure).
    if [[ -t 1 ]]; then
        exec tail -n 100 -F "$SERVER_LOG"
    fi
    tail -n 200 "$SERVER_LOG"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    logs) cmd_logs ;;
    *) echo "usage: $0 up|down|status|logs" >&2; exit 2 ;;
esac
