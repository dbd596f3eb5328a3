# The setup every benchmark script shares, sourced by benches/*.sh: the
# repository root as the current directory, a release build of rsr and
# rsr-mock in $dir, a temporary $work removed at exit, and every server
# started by start_mock (or whose pid is added to pids) stopped at exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --release --quiet --bins
dir="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
pids=()
mock_pid=
url=
cleanup() { for p in "${pids[@]}" ${mock_pid:-}; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Fails unless GNU time is there (CPU and peak RSS of a command).
needs_time() {
  command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 1; }
}

# Starts rsr-mock with ARGS on a free port; sets mock_pid and url (…/v1).
start_mock() {
  "$dir/rsr-mock" --port 0 "$@" > "$work/mock.out" &
  mock_pid=$!
  until grep -q listening "$work/mock.out" 2>/dev/null; do sleep 0.05; done
  url="$(sed -n 's/^listening on //p' "$work/mock.out")/v1"
}

stop_mock() { kill "$mock_pid"; wait "$mock_pid" 2>/dev/null || true; mock_pid=; url=; }

# COUNT one-line arithmetic prompts ("What is i plus 0?", answer i) as
# JSON Lines in FILE.
prompts() { # count file
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"id\":\"p%d\",\"messages\":[{\"role\":\"user\",\"content\":\"What is %d plus 0?\"}],\"answer\":\"%d\"}\n", i, i, i }' > "$2"
}
