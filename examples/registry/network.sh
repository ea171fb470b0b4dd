#!/usr/bin/env bash
# A node registry network on this machine, everything on 127.0.0.1 (README, "Node registry:
# run it"): three validators, each with its own member of a three-member etcd cluster (the
# validators' writes go through Raft), and three peers.
#
#   examples/registry/network.sh up      generate keys, render the configs, start everything
#   examples/registry/network.sh demo    submit each peer's record, show it on every node
#   examples/registry/network.sh status  which processes run, /readyz of each node
#   examples/registry/network.sh down    stop every process it started (by pid), remove the work dir
#
# Work dir: $VIGIL_REGISTRY_WORK (default /tmp/vigil-registry-network). Ports: etcd 23791-3
# (clients) and 23801-3 (peers), libp2p 24011-3 (validators) and 24021-3 (peers), HTTP
# 24101-3 and 24121-3. Without the etcd binary (or with VIGIL_REGISTRY_STORE=sqlite) the
# validators share one SQLite file instead, and the script says so loudly: that is a one-host
# development setup, not Raft.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VIGIL=${VIGIL:-$HERE/../../bin/vigil.js}
WORK=${VIGIL_REGISTRY_WORK:-/tmp/vigil-registry-network}
VALIDATORS=(validator-1 validator-2 validator-3)
PEERS=(peer-1 peer-2 peer-3)
PORTS=(23791 23792 23793 23801 23802 23803 24011 24012 24013 24021 24022 24023 24101 24102 24103 24121 24122 24123)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() {
  printf 'network.sh: %s\n' "$*" >&2
  exit 1
}
vigil() { node "$VIGIL" "$@"; }

# A pid file's process, if it is still the one we started (its command line names our work dir).
live_pid() {
  local f=$1 pid
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -qF "$WORK/" && echo "$pid"
}

# Starts one background process whose pid goes into $WORK/pids/<name>.pid, output into logs/.
start() {
  local name=$1
  shift
  nohup "$@" >"$WORK/logs/$name.log" 2>&1 &
  echo $! >"$WORK/pids/$name.pid"
}

http_ok() { node -e 'fetch(process.argv[1]).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))' "$1"; }

# Polls a command until it succeeds, at most $2 seconds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  for ((i = 0; i < seconds * 4; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  die "$what: not within ${seconds} s (logs in $WORK/logs/; stop what started with: $0 down)"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

peer_id() { vigil registry id --key "$WORK/keys/$1.key"; }

# The HTTP listener of a rendered node config.
http_url() { echo "http://127.0.0.1:$(sed -n 's/^http: { host: 127.0.0.1, port: \([0-9]*\) }.*/\1/p' "$WORK/$1.yaml")"; }

up() {
  for f in "$WORK"/pids/*.pid; do
    if live_pid "$f" >/dev/null; then die "already up (pids in $WORK/pids); run: $0 down"; fi
  done
  [[ -f $HERE/../../dist/src/cli/run.js ]] || die "build Vigil first: npm run build"
  for p in "${PORTS[@]}"; do port_free "$p" || die "port 127.0.0.1:$p is in use; stop what holds it"; done
  rm -rf "$WORK"
  mkdir -p "$WORK/keys" "$WORK/logs" "$WORK/pids" "$WORK/data"
  local use_etcd=1
  if [[ ${VIGIL_REGISTRY_STORE:-etcd} == sqlite ]] || ! command -v etcd >/dev/null; then
    use_etcd=0
    printf '\n\033[1;31m!!! %s: the three validators will share ONE SQLite\n!!! file, a one-host development setup with no Raft.\033[0m\n\n' \
      "$(command -v etcd >/dev/null && echo 'VIGIL_REGISTRY_STORE=sqlite' || echo 'etcd is not installed (apt-get install etcd-server)')" >&2
  fi

  say "keys (vigil keys generate, mode 0600) and peer ids (vigil registry id)"
  local sed_args=()
  for n in "${VALIDATORS[@]}" "${PEERS[@]}" outsider; do
    vigil keys generate -o "$WORK/keys/$n.key" >/dev/null
    local id
    id=$(peer_id "$n")
    printf '  %-12s %s\n' "$n" "$id"
    local var
    var=$(echo "$n" | tr 'a-z-' 'A-Z_')
    sed_args+=(-e "s/${var}_PEER_ID/$id/g")
  done

  say "configs rendered into $WORK"
  for n in "${VALIDATORS[@]}" "${PEERS[@]}" outsider; do
    sed "${sed_args[@]}" "$HERE/$n.yaml" >"$WORK/$n.yaml"
    if [[ $use_etcd == 0 && $n == validator-* ]]; then
      # Everything from `store:` on is the etcd store: a shared SQLite file instead.
      sed -i '/^store:/,$d' "$WORK/$n.yaml"
      printf 'store: { engine: sqlite, path: ./data/registry.db }\n' >>"$WORK/$n.yaml"
    fi
  done
  ls "$WORK"/*.yaml | sed 's/^/  /'

  if [[ $use_etcd == 1 ]]; then
    say "etcd: one member per validator (vigil etcd --config validator-N.yaml)"
    for n in "${VALIDATORS[@]}"; do start "etcd-${n#validator-}" node "$VIGIL" etcd --config "$WORK/$n.yaml"; done
  fi
  say "the registry store (vigil registry init --config validator-1.yaml)"
  wait_for "a store that answers" 60 vigil registry init --config "$WORK/validator-1.yaml"
  vigil registry init --config "$WORK/validator-1.yaml" | sed 's/^/  /'

  say "validators and peers (vigil registry run --config …)"
  for n in "${VALIDATORS[@]}" "${PEERS[@]}"; do start "$n" node "$VIGIL" registry run --config "$WORK/$n.yaml"; done
  for n in "${VALIDATORS[@]}" "${PEERS[@]}"; do
    wait_for "$n /readyz" 90 http_ok "$(http_url "$n")/readyz"
    printf '  %-12s ready at %s/readyz (pid %s)\n' "$n" "$(http_url "$n")" "$(cat "$WORK/pids/$n.pid")"
  done
  say "up. Next: $0 demo   (and $0 down when done)"
}

demo() {
  [[ -d $WORK/pids ]] || die "not up: run $0 up first"
  say "the validator set, as peer-1 sees it (vigil registry validators --config peer-1.yaml)"
  vigil registry validators --config "$WORK/peer-1.yaml"

  say "each peer signs its own record and submits it to a validator (vigil registry submit)"
  for n in "${PEERS[@]}"; do
    printf '  %-8s ' "$n"
    vigil registry submit --config "$WORK/$n.yaml"
  done

  say "every node holds every peer's record with a quorum of countersignatures"
  local ids=() urls=()
  for n in "${PEERS[@]}"; do ids+=("$(peer_id "$n")"); done
  for node in "${VALIDATORS[@]}" "${PEERS[@]}"; do urls+=("$(http_url "$node")"); done
  # One bounded poll over every (node, record) pair: GET /registry/records/<peer id>.
  node -e '
    const [ids, urls] = [process.argv[1].split(" "), process.argv[2].split(" ")];
    const end = Date.now() + 30_000;
    const ok = async (u, id) => {
      const r = await fetch(`${u}/registry/records/${id}`).catch(() => undefined);
      if (r?.status !== 200) return false;
      const j = await r.json();
      return j.countersignedBy.length >= j.quorum;
    };
    (async () => {
      for (;;) {
        const all = await Promise.all(ids.flatMap((id) => urls.map((u) => ok(u, id))));
        if (all.every(Boolean)) return console.log(`  ${ids.length} records on all ${urls.length} nodes, each with a quorum`);
        if (Date.now() > end) { console.error("  not every node has every record within 30 s"); process.exit(1); }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();' "${ids[*]}" "${urls[*]}"

  say "peer-3's view (vigil registry list --config peer-3.yaml)"
  vigil registry list --config "$WORK/peer-3.yaml"

  say "peer-1's record, read from validator-2 (vigil registry get <peer id> --config validator-2.yaml)"
  vigil registry get "$(peer_id peer-1)" --config "$WORK/validator-2.yaml"

  say "peer-1 moves to a new role: seq 2, flags kept (vigil registry submit --role relay)"
  vigil registry submit --config "$WORK/peer-1.yaml" --role relay

  say "a node the validators do not admit is refused with a typed error (exit code 1)"
  if vigil registry submit --config "$WORK/outsider.yaml"; then die "the outsider was admitted"; fi

  say "propagation: issuedAt → acceptance on each node (vigil_registry_propagation_seconds)"
  for node in "${VALIDATORS[@]}" "${PEERS[@]}"; do
    node -e '
      fetch(process.argv[1]).then((r) => r.text()).then((t) => {
        const v = (n) => Number((t.match(new RegExp(`^${n} (\\S+)$`, "m")) ?? [])[1] ?? 0);
        const count = v("vigil_registry_propagation_seconds_count");
        const sum = v("vigil_registry_propagation_seconds_sum");
        console.log(`  ${process.argv[2].padEnd(12)} ${count} record(s) received, mean ${count ? ((sum / count) * 1000).toFixed(0) : "-"} ms`);
      });' "$(http_url "$node")/metrics" "$node"
  done
  say "done. Logs: $WORK/logs/. Stop everything: $0 down"
}

status() {
  [[ -d $WORK/pids ]] || die "not up"
  for f in "$WORK"/pids/*.pid; do
    local name pid
    name=$(basename "$f" .pid)
    if pid=$(live_pid "$f"); then printf '  %-12s pid %s running\n' "$name" "$pid"; else printf '  %-12s not running\n' "$name"; fi
  done
}

# SIGTERM to every recorded pid of a group at once, then waits for each (SIGKILL after 30 s).
stop_group() {
  local pids=() names=() f pid
  for n in "$@"; do
    f=$WORK/pids/$n.pid
    pid=$(live_pid "$f") || continue
    kill -TERM "$pid" 2>/dev/null || continue
    pids+=("$pid")
    names+=("$n")
  done
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    for ((t = 0; t < 120; t++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "  ${names[$i]}: still running 30 s after SIGTERM, SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    else
      echo "  ${names[$i]}: stopped"
    fi
  done
}

down() {
  [[ -d $WORK/pids ]] || {
    echo "nothing to stop ($WORK/pids does not exist)"
    return 0
  }
  # The nodes first, then the etcd members under the validators; each by the pid recorded.
  stop_group "${PEERS[@]}" "${VALIDATORS[@]}"
  stop_group etcd-1 etcd-2 etcd-3
  rm -rf "$WORK"
  echo "removed $WORK"
}

case "${1:-}" in
up) up ;;
demo) demo ;;
status) status ;;
down) down ;;
*) die "usage: $0 up|demo|status|down" ;;
esac
