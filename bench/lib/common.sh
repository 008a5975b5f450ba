# The skeleton shared by the area runners bench/run_<area>.sh (sourced, not run):
#
#   source "$(dirname "$0")/lib/common.sh"
#
# After it: strict mode (set -euo pipefail), the working directory is the repository root, and
# $out is a fresh temporary directory removed when the runner exits. Then the helpers below.
# (run_all.sh and run_overhead.sh keep their own setup: they manage peers and kept output.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# machine: "<CPU model>, <N> CPUs", for a report's "Machine:" line.
machine() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
}

# kept_notes REPORT: the hand-written "## Notes" section (to the end) of an existing REPORT,
# nothing when there is no REPORT yet; a generated report ends with it so reruns keep the notes.
kept_notes() {
  if [ -f "$1" ]; then sed -n '/^## Notes/,$p' "$1"; fi
}

# install_report REPORT: copy the report built in $out/report.md to REPORT and say so on stderr.
install_report() {
  cp "$out/report.md" "$1"
  echo "wrote $1" >&2
}

# alternate_passes N FIRST SECOND: run the commands FIRST and SECOND (usually shell functions,
# one per side) N times, odd passes FIRST then SECOND, even passes the other way round, so
# neither side always runs on a warmer (or busier) machine.
alternate_passes() {
  local p
  for p in $(seq 1 "$1"); do
    if (( p % 2 )); then "$2"; "$3"; else "$3"; "$2"; fi
  done
}
