# Sourced by the launchers: quote ARGS... shell-quotes the arguments for display, leaving plain
# words bare.
quote() {
  local arg out=()
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./=:,+%@-]+$ ]]; then out+=("$arg"); else out+=("${arg@Q}"); fi
  done
  echo "${out[*]}"
}
