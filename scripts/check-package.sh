#!/bin/bash
# Checks what scripts/package.sh wrote under target/package/ with the tools that will consume
# it: rpm, dpkg-deb, tar, readelf, man, bash, systemd-analyze. Run by scripts/test.sh after
# package.sh; the lab's `package` scenario then installs the RPM in a guest and starts its units.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/package
W=$(mktemp -d /tmp/xenraid-check-package.XXXXXX)
trap 'rm -rf "$W"' EXIT

fails=0
ok() { echo "check-package: ok   $*"; }
bad() { echo "check-package: FAIL $*" >&2; fails=$((fails + 1)); }
expect() { # expect WHAT EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then ok "$1"; else bad "$1"; diff <(echo "$2") <(echo "$3") >&2 || true; fi
}

shopt -s nullglob
rpms=("$OUT"/xenraid-*-1.x86_64.rpm) debs=("$OUT"/xenraid_*_amd64.deb) tars=("$OUT"/xenraid-*-x86_64.tar.gz)
[ ${#rpms[@]} -eq 1 ] && [ ${#debs[@]} -eq 1 ] && [ ${#tars[@]} -eq 1 ] ||
  { echo "check-package: want one rpm, one deb, one tarball in $OUT (run scripts/package.sh)" >&2; exit 1; }
RPM=${rpms[0]} DEB=${debs[0]} TGZ=${tars[0]}
VER=$(rpm -qp --qf '%{VERSION}' "$RPM")
(cd "$OUT" && sha256sum --quiet -c SHA256SUMS) && ok "SHA256SUMS" || bad "SHA256SUMS"

# What every package must install, and nothing else. The resume unit is not here on purpose:
# `xenraid convert` writes its own into /etc/systemd/system and the finish removes it.
EXPECTED=$W/expected
{
  echo /etc/xenraid/xenraid.toml
  for u in packaging/systemd/*; do echo "/usr/lib/systemd/system/$(basename "$u")"; done
  echo /usr/sbin/xenraid
  echo /usr/share/bash-completion/completions/xenraid
  echo /usr/share/doc/xenraid/README.md
  echo /usr/share/fish/vendor_completions.d/xenraid.fish
  # one page per subcommand the shipped binary lists in its help, and the top page
  tar -xzOf "$TGZ" "xenraid-$VER-x86_64/usr/sbin/xenraid" >"$W/xenraid"
  chmod +x "$W/xenraid"
  "$W/xenraid" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && $1 != "" && $1 != "help" {print "/usr/share/man/man8/xenraid-" $1 ".8.gz"}'
  echo /usr/share/man/man8/xenraid.8.gz
  echo /usr/share/zsh/site-functions/_xenraid
} | LC_ALL=C sort >"$EXPECTED"
[ "$(grep -c man8 "$EXPECTED")" -ge 10 ] || bad "the binary's --help listed too few subcommands: $(cat "$EXPECTED")"

# --- RPM ---------------------------------------------------------------------------------------
expect "rpm: files" "$(cat "$EXPECTED")" "$(rpm -qpl "$RPM" | grep -vx -e /etc/xenraid -e /usr/share/doc/xenraid | LC_ALL=C sort)"
expect "rpm: %config(noreplace) /etc/xenraid/xenraid.toml" "cn /etc/xenraid/xenraid.toml" \
  "$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" | grep ' /etc/xenraid/xenraid.toml$')"
expect "rpm: config files" /etc/xenraid/xenraid.toml "$(rpm -qp --configfiles "$RPM")"
expect "rpm: owner root:root" "root:root" "$(rpm -qp --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME}\n]' "$RPM" | sort -u)"
expect "rpm: /usr/sbin/xenraid mode 0755" "100755 /usr/sbin/xenraid" \
  "$(rpm -qp --qf '[%{FILEMODES:octal} %{FILENAMES}\n]' "$RPM" | grep ' /usr/sbin/xenraid$')"
# Requirements: a shell for the scriptlets and rpmlib features CentOS 7's rpm 4.11 has (its
# `rpm --showrc` list) — no libc, no GLIBC_* symbol version, no zstd payload.
RPM411='BuiltinLuaScripts CompressedFileNames ConcurrentAccess ExplicitPackageProvide FileCaps FileDigests HeaderLoadSortsTags PartialHardlinkSets PayloadFilesHavePrefix PayloadIsBzip2 PayloadIsLzma PayloadIsXz ScriptletExpansion ScriptletInterpreterArgs TildeInVersions VersionedDependencies'
rpm -qp --requires "$RPM" | sort -u >"$W/requires"
unknown=$(while read -r req _; do
  case $req in
    /bin/sh | "config(xenraid)") ;;
    rpmlib\(*\)) f=${req#rpmlib(}; f=${f%)}; [[ " $RPM411 " == *" $f "* ]] || echo "$req" ;;
    *) echo "$req" ;;
  esac
done <"$W/requires")
if [ -z "$unknown" ]; then ok "rpm: requires only /bin/sh and rpm 4.11's rpmlib features ($(wc -l <"$W/requires") lines)"; else bad "rpm: requires what dom0 may not have: $unknown"; fi
grep -qi 'libc\|glibc\|\.so' "$W/requires" && bad "rpm: requires a shared library" || ok "rpm: no shared-library requirement"
expect "rpm: payload" "xz" "$(rpm -qp --qf '%{PAYLOADCOMPRESSOR}' "$RPM")"
rpm -qp --scripts "$RPM" | grep -q 'systemctl --no-reload disable xenraid-monitor.service' &&
  ok "rpm: preun disables the units on erase" || bad "rpm: no preun disable"
# Installed into a scratch root (no scriptlets: they talk to the host's systemd).
mkdir -p "$W/rpmroot"
if rpm --root "$W/rpmroot" -i --nodeps --noscripts --force-debian "$RPM" 2>"$W/rpm.err"; then
  expect "rpm -i: the installed binary runs" "xenraid $VER" "$("$W/rpmroot/usr/sbin/xenraid" --version)"
  expect "rpm -V: installed files verify" "" "$(rpm --root "$W/rpmroot" -V --nodeps xenraid)"
else
  bad "rpm -i into a scratch root: $(cat "$W/rpm.err")"
fi

# --- .deb --------------------------------------------------------------------------------------
dpkg-deb -f "$DEB" Package Version Architecture >"$W/control"
expect "deb: control" "$(printf 'Package: xenraid\nVersion: %s\nArchitecture: amd64' "$VER")" "$(cat "$W/control")"
dpkg-deb -f "$DEB" Depends Pre-Depends | grep -q . && bad "deb: has Depends: $(dpkg-deb -f "$DEB" Depends)" || ok "deb: depends on nothing (static)"
expect "deb: files" "$(cat "$EXPECTED")" \
  "$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print substr($6, 2)}' | LC_ALL=C sort)"
expect "deb: owner root/root" "root/root" "$(dpkg-deb -c "$DEB" | awk '{print $2}' | sort -u)"
expect "deb: conffiles" /etc/xenraid/xenraid.toml "$(dpkg-deb -I "$DEB" conffiles)"
dpkg-deb -x "$DEB" "$W/debroot"

# --- tarball -----------------------------------------------------------------------------------
expect "tar: files" "$({ sed "s|^|xenraid-$VER-x86_64|" "$EXPECTED"; echo "xenraid-$VER-x86_64/README.md"; } | LC_ALL=C sort)" \
  "$(tar -tzf "$TGZ" | grep -v '/$' | LC_ALL=C sort)"
expect "tar: owner 0/0" "0/0" "$(tar --numeric-owner -tvzf "$TGZ" | awk '{print $2}' | sort -u)"

# --- the same static binary in all three -------------------------------------------------------
b_rpm=$W/rpmroot/usr/sbin/xenraid b_deb=$W/debroot/usr/sbin/xenraid b_tar=$W/xenraid
expect "the three binaries are one" 1 "$(sha256sum "$b_rpm" "$b_deb" "$b_tar" | awk '{print $1}' | sort -u | wc -l)"
if readelf -lW "$b_tar" | grep -q INTERP || readelf -dW "$b_tar" | grep -q '(NEEDED)'; then
  bad "the shipped binary is dynamic: $(readelf -lW "$b_tar" | grep -A1 INTERP) $(readelf -dW "$b_tar" | grep NEEDED)"
else
  ok "the shipped binary is static: no PT_INTERP, no DT_NEEDED"
fi

# --- man pages ---------------------------------------------------------------------------------
for page in "$W"/debroot/usr/share/man/man8/*.8.gz; do
  name=$(basename "$page" .8.gz)
  # -Tutf8 keeps bold/underline as escapes or overstrikes: strip them to read the text
  warnings=$(LC_ALL=C.UTF-8 man --warnings -l -Tutf8 "$page" 2>&1 >"$W/page.raw") || true
  sed 's/\x1b\[[0-9;]*m//g' "$W/page.raw" | col -bx >"$W/page.txt"
  if [ -n "$warnings" ]; then bad "man $name: $warnings"; continue; fi
  grep -q "^NAME" "$W/page.txt" && grep -q "^SYNOPSIS" "$W/page.txt" && grep -q "$name(8)" "$W/page.txt" ||
    { bad "man $name: no NAME/SYNOPSIS or not section 8"; continue; }
done
sub_pages=$(LC_ALL=C.UTF-8 man -l -Tutf8 "$W/debroot/usr/share/man/man8/xenraid.8.gz" 2>/dev/null | grep -c 'xenraid-[a-z-]*(8)')
[ "$sub_pages" -ge 10 ] && ok "man: $(ls "$W"/debroot/usr/share/man/man8 | wc -l) pages render without warnings; xenraid(8) names $sub_pages subcommand pages" ||
  bad "man: xenraid(8) names $sub_pages subcommand pages"

# --- completions -------------------------------------------------------------------------------
comp=$W/debroot/usr/share/bash-completion/completions/xenraid
bash -n "$comp" && ok "bash: completion parses" || bad "bash: completion does not parse"
# What bash does at a TAB after `xenraid sc` and after `xenraid scrub --bu`.
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
           _xenraid xenraid "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; echo "${COMPREPLY[*]}"' _ "$comp" "$@"
}
expect "bash: registered" "complete -o bashdefault -o default -o nosort -F _xenraid xenraid" \
  "$(bash -c 'source "$1"; complete -p xenraid' _ "$comp")"
expect "bash: TAB after 'xenraid sc'" "scrub" "$(complete_words xenraid sc)"
expect "bash: TAB after 'xenraid scrub --bu'" "--budget" "$(complete_words xenraid scrub --bu)"
if command -v zsh >/dev/null; then zsh -n "$W/debroot/usr/share/zsh/site-functions/_xenraid" && ok "zsh: parses" || bad "zsh: does not parse"; fi
if command -v fish >/dev/null; then fish -n "$W/debroot/usr/share/fish/vendor_completions.d/xenraid.fish" && ok "fish: parses" || bad "fish: does not parse"; fi

# --- systemd units -----------------------------------------------------------------------------
# systemd-analyze verify against the installed tree (the host's own units beside it, for the
# targets they name): unknown keys, a missing ExecStart binary, bad timer specs.
if command -v systemd-analyze >/dev/null; then
  cp -rn /usr/lib/systemd/system/. "$W/debroot/usr/lib/systemd/system/" 2>/dev/null || true
  units=()
  for u in packaging/systemd/*; do units+=("/usr/lib/systemd/system/$(basename "$u")"); done
  v=$(systemd-analyze verify --man=no --root="$W/debroot" "${units[@]}" 2>&1) && [ -z "$v" ] &&
    ok "systemd-analyze verify: ${units[*]##*/}" || bad "systemd-analyze verify: $v"
fi

if [ "$fails" -ne 0 ]; then echo "check-package: $fails failed" >&2; exit 1; fi
echo "check-package: all passed ($(basename "$RPM") $(stat -c %s "$RPM") B, $(basename "$DEB") $(stat -c %s "$DEB") B, $(basename "$TGZ") $(stat -c %s "$TGZ") B)"
