# Shared by bench/sse/run.sh and run_cluster.sh (sourced, not run).

# need_bins NAME BIN...: every BIN is built, else say how and exit 2.
need_bins() {
  local name=$1 bin
  shift
  for bin in "$@"; do
    if [[ ! -x $bin ]]; then
      echo "$name: $bin not found; build it: cmake --build build/${PRESET:-release} --target embedstream bench_sse" >&2
      exit 2
    fi
  done
}

# raise_fd_limit NAME: 1000 SSE streams are 1000 sockets; the soft open-file
# limit goes up to 4096 (within the hard one), and below 1100 is an error.
raise_fd_limit() {
  local want=4096 hard
  if (( $(ulimit -n) < want )); then
    hard=$(ulimit -Hn)
    [[ $hard == unlimited ]] && hard=$want
    ulimit -n $(( hard < want ? hard : want ))
  fi
  if (( $(ulimit -n) < 1100 )); then
    echo "$1: open-file limit $(ulimit -n) is below 1100; raise the hard limit (ulimit -Hn, limits.conf)" >&2
    exit 2
  fi
}
