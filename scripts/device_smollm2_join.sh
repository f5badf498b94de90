# Sourced by the device scripts: join_smollm2 PARTS DEST joins the SmolLM2-135M GGUF that travelled in
# three parts (parts 00 and 01 copied to /tmp/smol by earlier calls, part 02 in PARTS; see
# device_frontier.sh) into DEST and checks it against scripts/get-models' sha256.
join_smollm2() {
  local parts=$1 dest=$2 want
  mkdir -p "$(dirname "$dest")"
  cat /tmp/smol/part.00 /tmp/smol/part.01 "$parts"/part.02 > "$dest" || return 1
  want=$(grep -m1 '^SHA256=' scripts/get-models | cut -d'"' -f2)
  [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ] || { echo "sha256 mismatch: a part is missing or stale" >&2; return 1; }
}
