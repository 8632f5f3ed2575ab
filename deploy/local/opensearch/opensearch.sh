#!/usr/bin/env bash
# A local, single-node OpenSearch for the log archive's tests and a first try (GATEWAY_ARCHIVE_URL=opensearch://).
#
#   opensearch.sh install   assemble OpenSearch from Maven Central (pom.xml beside this script) into
#                           .local/opensearch/dist, unless the one there was made from this pom already
#   opensearch.sh up        install, then start it (loopback only) and wait until it answers; idempotent
#   opensearch.sh down      stop it (--purge also deletes its data and logs)
#   opensearch.sh status    say whether it runs, its RSS and the cluster health
#   opensearch.sh url       print the GATEWAY_ARCHIVE_URL for it
#
# No distribution archive is published on Maven Central, so the server jar and its dependencies are copied with
# Maven, and the transport module (transport-netty4) gets the plugin descriptor and security policy that the
# distribution build would have written. OpenSearch refuses to run as root: as root, the server runs as the
# unprivileged user `tenx-opensearch`, created here. State lives under <repo>/.local/opensearch (git-ignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
STATE="${TENX_OPENSEARCH_DIR:-$ROOT/.local/opensearch}"
DIST="$STATE/dist"
HOME_DIR="$STATE/home"
CONF="$STATE/config"
DATA="$STATE/data"
LOGS="$STATE/logs"
RUN="$STATE/run"
PIDFILE="$RUN/opensearch.pid"  # written by OpenSearch itself (-p)
HTTP_PORT="${TENX_OPENSEARCH_PORT:-19200}"
TRANSPORT_PORT="${TENX_OPENSEARCH_TRANSPORT_PORT:-19300}"
HEAP="${TENX_OPENSEARCH_HEAP:-512m}"
RUN_USER="tenx-opensearch"
VERSION="$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$HERE/pom.xml")"
READY_TIMEOUT="${TENX_OPENSEARCH_READY_TIMEOUT:-120}"

log() { printf '[opensearch] %s\n' "$*" >&2; }
die() { printf '[opensearch] ERROR: %s\n' "$*" >&2; exit 1; }

# What the dist is made from: the pom and the transport module's descriptor and policy.
recipe_hash() { cat "$HERE/pom.xml" "$HERE"/transport-netty4/* | sha256sum | cut -c1-16; }

install() {
  local want; want="$(recipe_hash)"
  if [[ -f $DIST/.recipe && $(cat "$DIST/.recipe") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to assemble OpenSearch: apt-get install -y maven"
  command -v java >/dev/null || die "Java 17 is needed to run OpenSearch $VERSION"
  local started=$SECONDS tmp="$STATE/dist.new"
  log "assembling OpenSearch $VERSION from Maven Central into $DIST"
  rm -rf "$tmp" && mkdir -p "$tmp"
  (cd "$HERE" && mvn -q -B -f pom.xml package -Ddist="$tmp") >&2 || die "mvn package failed"
  rm -rf "$HERE/target"  # the pom's build directory, if Maven made one there
  local module="$tmp/modules/transport-netty4"
  [[ -f $module/transport-netty4-client-$VERSION.jar ]] || die "transport-netty4-client was not copied"
  sed "s/@VERSION@/$VERSION/g" "$HERE/transport-netty4/plugin-descriptor.properties.in" \
    >"$module/plugin-descriptor.properties"
  cp "$HERE/transport-netty4/plugin-security.policy" "$module/"
  echo "$want" >"$tmp/.recipe"
  rm -rf "$DIST" && mv "$tmp" "$DIST"
  log "assembled in $((SECONDS - started)) s ($(du -sh "$DIST" | cut -f1))"
}

owner() {
  if [[ $(id -u) -ne 0 ]]; then
    id -un
    return
  fi
  if ! id -u "$RUN_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$STATE" --shell /usr/sbin/nologin "$RUN_USER" \
      || die "cannot create user $RUN_USER"
  fi
  echo "$RUN_USER"
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u "$RUN_USER" -- "$@"; else "$@"; fi
}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# Up once it answers with its primaries placed (yellow: a replica some other client asked for is never placed on a
# single node; waiting for green would wait for ever, holding the lock every `up` takes).
answers() { curl -fsS -m 2 "http://127.0.0.1:$HTTP_PORT/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; }

layout() {
  local user="$1"
  mkdir -p "$HOME_DIR/bin" "$HOME_DIR/plugins" "$CONF" "$DATA" "$LOGS" "$RUN"
  ln -sfn "$DIST/lib" "$HOME_DIR/lib"
  ln -sfn "$DIST/modules" "$HOME_DIR/modules"
  cat >"$CONF/opensearch.yml" <<EOF
cluster.name: tenx-local
node.name: tenx-local-1
path.data: $DATA
path.logs: $LOGS
network.host: 127.0.0.1
http.port: $HTTP_PORT
transport.port: $TRANSPORT_PORT
discovery.type: single-node
# a shared development disk filling up must not turn the archive read-only
cluster.routing.allocation.disk.threshold_enabled: false
EOF
  cat >"$CONF/log4j2.properties" <<'EOF'
status = error
appender.rolling.type = RollingFile
appender.rolling.name = rolling
appender.rolling.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}.log
appender.rolling.filePattern = ${sys:opensearch.logs.base_path}${sys:file.separator}${sys:opensearch.logs.cluster_name}-%i.log
appender.rolling.layout.type = PatternLayout
appender.rolling.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n
appender.rolling.policies.type = Policies
appender.rolling.policies.size.type = SizeBasedTriggeringPolicy
appender.rolling.policies.size.size = 16MB
appender.rolling.strategy.type = DefaultRolloverStrategy
appender.rolling.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.rolling.ref = rolling
EOF
  [[ $(id -u) -eq 0 ]] && chown -R "$user" "$CONF" "$DATA" "$LOGS" "$RUN"
  return 0
}

up() {
  exec 9>"$STATE.lock"
  flock 9
  install
  if running && answers; then
    defaults
    return 0
  fi
  local user; user="$(owner)"
  if ! running; then
    layout "$user"
    local started=$SECONDS
    log "starting OpenSearch $VERSION on 127.0.0.1:$HTTP_PORT as $user (heap $HEAP)"
    # The options the distribution's jvm.options would give, for this heap and Java 17.
    ( exec 9>&-  # the lock stays with this script, not with the server
    as_owner setsid java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -Xss1m \
      -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true -XX:-OmitStackTraceInFastThrow \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT \
      -Djava.security.manager=allow -Djava.io.tmpdir="$DATA" \
      -Dopensearch.path.home="$HOME_DIR" -Dopensearch.path.conf="$CONF" \
      -Dopensearch.distribution.type=tar -Dopensearch.bundled_jdk=false \
      -cp "$HOME_DIR/lib/*" org.opensearch.bootstrap.OpenSearch -p "$PIDFILE" \
      >"$LOGS/stdout.log" 2>&1 </dev/null ) &
    local launcher=$!
    until answers; do
      if ! kill -0 "$launcher" 2>/dev/null; then
        tail -n 40 "$LOGS/stdout.log" >&2
        die "OpenSearch exited while starting (logs: $LOGS)"
      fi
      if (( SECONDS - started > READY_TIMEOUT )); then
        die "OpenSearch did not answer within $READY_TIMEOUT s (logs: $LOGS)"
      fi
      sleep 0.5
    done
    log "up in $((SECONDS - started)) s, RSS $(rss_mb) MB"
  else
    until answers; do sleep 0.5; done
  fi
  defaults
}

# Indices of this single node get no replica (a replica could never be placed: the index would stay yellow). The
# gateway's own template says the same through its URL (?replicas=0); this covers any other index (a bench's,
# a test's own prefix).
defaults() {
  curl -fsS -m 10 -X DELETE "http://127.0.0.1:$HTTP_PORT/_template/tenx-local-defaults" >/dev/null 2>&1 || true
  curl -fsS -m 10 -X PUT "http://127.0.0.1:$HTTP_PORT/_index_template/tenx-local-defaults" \
    -H 'Content-Type: application/json' \
    -d '{"index_patterns": ["*"], "priority": 0, "template": {"settings": {"number_of_replicas": 0}}}' >/dev/null
}

rss_mb() {
  local pid; pid="$(cat "$PIDFILE" 2>/dev/null)"
  [[ -n $pid ]] && awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || echo "?"
}

down() {
  if running; then
    local pid; pid="$(cat "$PIDFILE")"
    log "stopping OpenSearch (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do running || break; sleep 0.5; done
    if running; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$PIDFILE"
  if [[ ${1:-} == --purge ]]; then
    rm -rf "$DATA" "$LOGS" "$HOME_DIR" "$CONF"
  fi
}

status() {
  if running; then
    echo "OpenSearch $VERSION: running, pid $(cat "$PIDFILE"), RSS $(rss_mb) MB, http://127.0.0.1:$HTTP_PORT"
    curl -fsS -m 5 "http://127.0.0.1:$HTTP_PORT/_cat/health?v" || true
  else
    echo "OpenSearch $VERSION: not running"
    return 1
  fi
}

mkdir -p "$STATE"
case "${1:-}" in
  install) install ;;
  up) up ;;
  down) shift; down "$@" ;;
  status) status ;;
  url) echo "opensearch://127.0.0.1:$HTTP_PORT/tenx-logs-?replicas=0" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
