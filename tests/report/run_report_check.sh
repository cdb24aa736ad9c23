#!/usr/bin/env bash
# Look at the study's report in a real browser: install Debian's Chromium and ChromeDriver and selenium, write
# the report of a study that has been run (`snakemake --report`), open it in headless Chromium and check that
# every figure and table is there with its caption and reachable through its stage's menu; save a screenshot.
#
#   sudo bash tests/report/run_report_check.sh STUDY_DIR [SNAKEMAKE_ARGS...]
#   e.g. sudo bash tests/report/run_report_check.sh . --config "capacity={dataset: mnist_embedded}"
#
# STUDY_DIR: where the study ran (its config.yaml and results/); SNAKEMAKE_ARGS: the --config/--configfile the
# study ran with. The screenshot goes to $REPORT_SCREENSHOT (default docs/figures/report.png).
# Needs root and apt (Debian 12 / Ubuntu); it installs packages, so it stays out of CI like the SLURM test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STUDY="$(cd "${1:?usage: run_report_check.sh STUDY_DIR [SNAKEMAKE_ARGS...]}" && pwd)"
shift
SHOT="${REPORT_SCREENSHOT:-$ROOT/docs/figures/report.png}"

if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
python3 -c "import selenium" 2>/dev/null || pip install -q selenium
/usr/bin/chromium --version

(cd "$ROOT" && snakemake -s Snakefile --directory "$STUDY" "$@" --report "$STUDY/report.html") >"$STUDY/report.log" 2>&1
echo "report: $(du -h "$STUDY/report.html" | cut -f1)"
python3 "$ROOT/tests/report/check_report.py" "$STUDY/report.html" --results "$STUDY/results" --screenshot "$SHOT"
echo "REPORT CHECK PASSED"
