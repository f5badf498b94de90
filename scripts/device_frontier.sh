#!/usr/bin/env bash
# The quality frontier (cascade study --protocol continuation) of SmolLM2-135M on the device machine.
# A call carries at most 64 MiB (the repository's tracked files included), so the 98 MB GGUF travels
# in three parts over three calls made back to back (the machine keeps /tmp while it stays warm,
# about 30 s idle): parts a and b are copied to /tmp/smol, the third call joins them with part c,
# checks the sha256 of scripts/get-models, unpacks the carried CLI (scripts/pack_device_bins.sh) and
# runs the studies named in the STUDIES file (one `NAME ARGS...` line each: NAME becomes the output
# folder, ARGS go to cascade study after --model, --text and --out; ONLY picks some of them by name).
# Made here with (40 MB parts: each call's 64 MiB also holds the repository's tracked files):
# split -b 40000000 -d SmolLM2-135M-Instruct.Q4_1.gguf part. (parts 00, 01, 02 into
# .carry-smol-a, -b, -c with wiki.test.raw in -c), pack_device_bins.sh build-cuda .carry-bins cascade.
# Usage (device, repository root):
#   PART=a bash scripts/device_frontier.sh .carry-smol-a
#   PART=b bash scripts/device_frontier.sh .carry-smol-b
#   PART=run STUDIES=scripts/frontier/smollm2.txt [ONLY="NAME ..."] bash scripts/device_frontier.sh .carry-smol-c OUT_DIR
#   (carry .carry-bins too; scripts/frontier/ holds the study lists that RESULTS.md cites)
#   RESUME=DIR (a carried folder with NAME/params.json and NAME/windows.jsonl of a study cut short in
#   an earlier call, e.g. results/): that study resumes where it stopped.
set -uo pipefail
PARTS=${1:?carried folder}
SMOL=/tmp/smol
mkdir -p "$SMOL"
case "${PART:?PART=a|b|run}" in
  a | b) cp "$PARTS"/part.* "$SMOL"/ && ls -la "$SMOL"; exit ;;
  run) ;;
  *) echo "PART must be a, b or run" >&2; exit 2 ;;
esac
OUT=${2:?output folder}
CARRY=${CARRY:-.carry-bins}  # or any folder with bin.tar.xz holding cascade (.carry-gpu)
B=build-gpu
source "$(dirname "$0")/device_env.sh"
source "$(dirname "$0")/device_smollm2_join.sh"
model=$SMOL/SmolLM2-135M-Instruct.Q4_1.gguf
join_smollm2 "$PARTS" "$model" || exit 1
nproc > "$OUT/machine.txt"
# Every study stops by BUDGET_S seconds after the start (default 560, under a call's 600) so that what
# finished comes back; a study cut short keeps its finished windows in windows.jsonl.
deadline=$((SECONDS + ${BUDGET_S:-560}))
while read -r name args; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || continue
  left=$((deadline - SECONDS))
  [ "$left" -gt 10 ] || { echo "$name: skipped, no time left" | tee -a "$OUT/summary_so_far.txt"; continue; }
  # A study cut short in an earlier call resumes from its params.json and windows.jsonl in RESUME/NAME.
  if [ -n "${RESUME:-}" ] && [ -f "$RESUME/$name/params.json" ]; then
    mkdir -p "$OUT/$name" && cp "$RESUME/$name/params.json" "$RESUME/$name/windows.jsonl" "$OUT/$name/"
  fi
  # shellcheck disable=SC2086
  run "$name" "$OUT/$name.log" timeout "$left" $B/cascade study --model "$model" --text "$PARTS/wiki.test.raw" \
    --out "$OUT/$name" $args
  tail -3 "$OUT/$name.log"
done < "${STUDIES:?STUDIES file}"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
tar czf /tmp/studies.tar.gz -C "$OUT" --exclude studies.tar.gz . && mv /tmp/studies.tar.gz "$OUT/" && find "$OUT" -mindepth 1 -maxdepth 1 ! -name studies.tar.gz ! -name summary.txt -exec rm -rf {} +
