#!/bin/bash
# Builds what is shipped, under target/package/:
#   xenraid-VER-x86_64.tar.gz   the file tree below, in xenraid-VER-x86_64/
#   xenraid-VER-1.x86_64.rpm    for XenServer / XCP-ng dom0 (CentOS 7: rpm 4.11, systemd 219)
#   xenraid_VER_amd64.deb       for plain Debian hosts
#   SHA256SUMS
# Every one holds the same tree: /usr/sbin/xenraid (static musl, checked here: no program
# interpreter, no shared library), the systemd units, /etc/xenraid/xenraid.toml (a config
# file: an upgrade never overwrites the admin's), section-8 man pages and bash/zsh/fish
# completions generated from the CLI by packaging/gen, the README.
# Needs what scripts/setup.sh installs (rpm for rpmbuild, binutils for readelf).
# Env: SOURCE_DATE_EPOCH (default: the last commit's time) stamps the man pages, the files'
# times and the RPM's build time, so a rebuild of one commit gives the same tree.
# XENRAID_PACKAGER overrides the Maintainer/Packager field.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/package
WORK=$ROOT/target/package-build
TARGET=x86_64-unknown-linux-musl
BIN=$ROOT/target/$TARGET/release/xenraid
PACKAGER=${XENRAID_PACKAGER:-xenraid maintainers <maintainers@users.noreply.r-seed-83e0b144.example>}
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
DATE=$(date -u -d "@$EPOCH" +%Y-%m-%d)
# cargo runs without it: ring's C build tracks SOURCE_DATE_EPOCH, so a new value (every
# commit) would rebuild the release binary, and the lab's plain `cargo build` right after
# would rebuild it again. rpmbuild gets it (build time, clamped file times).
unset SOURCE_DATE_EPOCH

say() { echo "package: $*"; }
die() { echo "package: $*" >&2; exit 1; }

# --- the binary -----------------------------------------------------------------------------
cargo build --release --target "$TARGET" -p xenraid
# Static means the kernel runs it with nothing else present: no PT_INTERP (no dynamic loader
# is asked for) and no DT_NEEDED (no shared library). `file` only guesses from the same
# headers; readelf reads them. dom0's glibc 2.17 must never matter.
readelf -hW "$BIN" | grep -q 'Machine: *Advanced Micro Devices X86-64' || die "$BIN is not x86-64"
if readelf -lW "$BIN" | grep -q 'INTERP'; then die "$BIN asks for a program interpreter (PT_INTERP): not static"; fi
if readelf -dW "$BIN" | grep -q '(NEEDED)'; then die "$BIN needs shared libraries: $(readelf -dW "$BIN" | grep NEEDED)"; fi
VER=$("$BIN" --version | awk '{print $2}')
[[ $VER =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "unexpected version from $BIN --version: $VER"
say "xenraid $VER: static ($(stat -c %s "$BIN") bytes)"

# --- the tree every package holds -----------------------------------------------------------
rm -rf "$WORK" "$OUT"
mkdir -p "$WORK" "$OUT"
cargo run --quiet -p xenraid-gen -- "$WORK/gen" --date "$DATE"
T=$WORK/tree
install -D -m 0755 "$BIN" "$T/usr/sbin/xenraid"
for u in packaging/systemd/*; do install -D -m 0644 "$u" "$T/usr/lib/systemd/system/$(basename "$u")"; done
install -D -m 0644 packaging/xenraid.toml "$T/etc/xenraid/xenraid.toml"
mkdir -p "$T/usr/share/man/man8"
for m in "$WORK"/gen/man/*.8; do gzip -9 -n -c "$m" >"$T/usr/share/man/man8/$(basename "$m").gz"; done
install -D -m 0644 "$WORK/gen/completions/xenraid.bash" "$T/usr/share/bash-completion/completions/xenraid"
install -D -m 0644 "$WORK/gen/completions/_xenraid" "$T/usr/share/zsh/site-functions/_xenraid"
install -D -m 0644 "$WORK/gen/completions/xenraid.fish" "$T/usr/share/fish/vendor_completions.d/xenraid.fish"
install -D -m 0644 README.md "$T/usr/share/doc/xenraid/README.md"
find "$T" -exec touch -h -d "@$EPOCH" {} +
# One list for the RPM's %files and the checks: every file the packages install.
(cd "$T" && find . -type f -o -type l | sed 's|^\.||' | LC_ALL=C sort) >"$WORK/files"

# --- tarball --------------------------------------------------------------------------------
TOP=xenraid-$VER-x86_64
mkdir -p "$WORK/tar"
cp -a "$T" "$WORK/tar/$TOP"
cp README.md "$WORK/tar/$TOP/README.md"
tar -C "$WORK/tar" --sort=name --owner=0 --group=0 --numeric-owner \
  --mtime="@$EPOCH" -cf - "$TOP" | gzip -9 -n >"$OUT/$TOP.tar.gz"

# --- RPM ------------------------------------------------------------------------------------
# rpmbuild from Debian's rpm (4.18), told to write what CentOS 7's rpm 4.11 reads: an xz
# payload (4.18's default here is zstd, which 4.11 cannot open). Nothing is rewritten after
# staging: no brp-strip/brp-compress (the binary is stripped by cargo, the pages are already
# gzipped), no /usr/lib/.build-id links (they would clash with any other package carrying the
# same build id), no debuginfo package. The requirement generator stays on: for a static
# binary it finds nothing, and the checks prove that.
mkdir -p "$WORK/rpm"
{
  cat <<EOF
%define _binary_payload w6.xzdio
%define _build_id_links none
%define __os_install_post %{nil}
%define debug_package %{nil}
%define use_source_date_epoch_as_buildtime 1
%define clamp_mtime_to_source_date_epoch 1
%define _rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm

Name: xenraid
Version: $VER
Release: 1
Summary: Move a single-disk XenServer / XCP-ng host onto Linux software RAID1 and keep it healthy
License: MIT
Packager: $PACKAGER
BuildArch: x86_64

%description
xenraid converts a running single-disk XenServer / XCP-ng host (or a plain GRUB2 Linux host)
to Linux software RAID1 (mdadm) with one reboot, resumable after a crash, and keeps it
healthy: status (Nagios), doctor, an event-driven monitor with mail / XenCenter / webhook
alerts, Prometheus metrics and a resumable scrub. A static binary: it needs no library.

%install
cp -a "$T/." "%{buildroot}/"

%post
# A new or changed unit file is read only after a reload. Nothing is enabled here: the
# administrator chooses (systemctl enable --now xenraid-monitor xenraid-scrub.timer).
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi

%preun
# Erase (not upgrade): stop and disable what runs from this package. Separate disable and
# stop: CentOS 7's systemd 219 has no \`disable --now\`.
if [ \$1 -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl --no-reload disable xenraid-monitor.service xenraid-scrub.timer >/dev/null 2>&1 || :
  systemctl stop xenraid-monitor.service xenraid-scrub.timer xenraid-scrub.service >/dev/null 2>&1 || :
fi

%postun
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  # Upgrade: a running monitor continues with the new binary.
  if [ \$1 -ge 1 ]; then systemctl try-restart xenraid-monitor.service >/dev/null 2>&1 || :; fi
fi

%files
%defattr(-,root,root,-)
%dir /etc/xenraid
%config(noreplace) /etc/xenraid/xenraid.toml
%dir /usr/share/doc/xenraid
EOF
  grep -v '^/etc/xenraid/xenraid.toml$' "$WORK/files"
} >"$WORK/rpm/xenraid.spec"
SOURCE_DATE_EPOCH=$EPOCH rpmbuild -bb --quiet \
  --define "_topdir $WORK/rpm" \
  --define "_rpmdir $OUT" \
  --define "_tmppath $WORK/rpm/tmp" \
  "$WORK/rpm/xenraid.spec" >"$WORK/rpmbuild.log" 2>&1 || { cat "$WORK/rpmbuild.log"; die "rpmbuild failed"; }

# --- .deb -----------------------------------------------------------------------------------
# Plain Debian: the same tree; dpkg keeps an edited /etc/xenraid/xenraid.toml as a conffile.
D=$WORK/deb
cp -a "$T" "$D"
mkdir -p "$D/DEBIAN"
cat >"$D/DEBIAN/control" <<EOF
Package: xenraid
Version: $VER
Architecture: amd64
Maintainer: $PACKAGER
Installed-Size: $(du -sk --exclude=DEBIAN "$D" | cut -f1)
Recommends: mdadm
Section: admin
Priority: optional
Description: move a single-disk host onto Linux software RAID1 and keep it healthy
 xenraid converts a running single-disk XenServer / XCP-ng host (or a plain GRUB2 Linux
 host) to Linux software RAID1 (mdadm) with one reboot, resumable after a crash, and keeps
 it healthy: status (Nagios), doctor, an event-driven monitor with mail / webhook alerts,
 Prometheus metrics and a resumable scrub. A static binary: it needs no library.
EOF
echo /etc/xenraid/xenraid.toml >"$D/DEBIAN/conffiles"
cat >"$D/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
# Nothing is enabled here: the administrator chooses.
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
if [ "$1" = configure ] && [ -n "$2" ] && [ -d /run/systemd/system ]; then
  # upgrade: a running monitor continues with the new binary
  systemctl try-restart xenraid-monitor.service >/dev/null 2>&1 || true
fi
EOF
cat >"$D/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl --no-reload disable xenraid-monitor.service xenraid-scrub.timer >/dev/null 2>&1 || true
  systemctl stop xenraid-monitor.service xenraid-scrub.timer xenraid-scrub.service >/dev/null 2>&1 || true
fi
EOF
cat >"$D/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
EOF
chmod 0755 "$D/DEBIAN/postinst" "$D/DEBIAN/prerm" "$D/DEBIAN/postrm"
find "$D/DEBIAN" -exec touch -h -d "@$EPOCH" {} +
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --build --root-owner-group -Zxz "$D" "$OUT/xenraid_${VER}_amd64.deb" >/dev/null

(cd "$OUT" && sha256sum -- *.tar.gz *.rpm *.deb >SHA256SUMS)
for f in "$OUT"/*; do say "$(basename "$f") $(stat -c %s "$f") bytes"; done
