# Sourced by every recipe. Helpers for building guest disk images on a host whose kernel
# has no partition-table support on loop devices (each partition gets an offset loop).
set -euo pipefail

ts() { date +%s.%N; }
log() { echo "[recipe $(date +%T)] $*" >&2; }

# The Debian mirror the host itself uses (never hard-coded: the lab takes packages only
# from the registry the machine is configured for).
debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /bookworm( |$)/ && u !~ /security/) {print u; exit} }' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || { echo "no bookworm mirror configured in /etc/apt" >&2; return 1; }
  echo "$uri"
}

LOOPS=()
MOUNTS=()
cleanup_mounts() {
  set +e
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null; done
  for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null; done
  MOUNTS=(); LOOPS=()
}

# part_loop IMG N -> loop device covering partition N of IMG
part_loop() {
  local img=$1 n=$2 first last dev
  first=$(sgdisk -i "$n" "$img" | awk '/First sector/{print $3}')
  last=$(sgdisk -i "$n" "$img" | awk '/Last sector/{print $3}')
  dev=$(losetup -f --show -o $((first * 512)) --sizelimit $(((last - first + 1) * 512)) "$img")
  LOOPS+=("$dev")
  echo "$dev"
}

mount_track() { mount "$@"; MOUNTS+=("${!#}"); }

# 6 random lowercase letters, as XenServer's installer suffixes its labels
label_suffix() {
  local s="" i letters=abcdefghijklmnopqrstuvwxyz
  for i in 1 2 3 4 5 6; do s+=${letters:RANDOM % 26:1}; done
  echo "$s"
}
