#!/usr/bin/env bash
# `make deb`: Debian packages of the static binary for arm64, armhf (ARMv7) and armel (ARMv6,
# Pi Zero/1), and amd64, into dist/. Usage: hack/deb.sh [ARCH...] (default: all four).
# Only dpkg-deb is needed; the package is built from firmware/ and the example config.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-dist}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0)}
# A release tag (v1.2.3, v1.2.3-4-gabc1234) is its Debian version; anything else (a bare commit)
# sorts below every release. Hyphens would split off a Debian revision: they become '+'.
DEBVER=${VERSION#v}
[[ $DEBVER =~ ^[0-9]+\.[0-9]+ ]] || DEBVER="0.0~git${DEBVER}"
DEBVER=${DEBVER//-/+}
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG=github.com/obdgw/obdgw
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(arm64 armhf armel amd64)
mkdir -p "$OUT"
for arch in "${arches[@]}"; do
  case $arch in
    arm64) goarch=arm64 goarm= ;;
    armhf) goarch=arm goarm=7 ;;
    armel) goarch=arm goarm=6 ;;
    amd64) goarch=amd64 goarm= ;;
    *) echo "deb: unknown architecture $arch (arm64, armhf, armel, amd64)" >&2; exit 2 ;;
  esac
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  chmod 0755 "$root"
  install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/obdgw" "$root/usr/share/doc/obdgw"
  CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm $GO build -trimpath \
    -ldflags "-s -w -X $PKG/firmware/version.Version=$VERSION -X $PKG/firmware/version.Commit=$COMMIT" \
    -o "$root/usr/bin/obdgw" ./gateway/cmd/obdgw
  install -m 0644 firmware/systemd/obdgw.service "$root/lib/systemd/system/obdgw.service"
  install -m 0640 obdgw.example.yaml "$root/etc/obdgw/obdgw.yaml"
  install -m 0644 README.md "$root/usr/share/doc/obdgw/README.md"
  install -m 0644 LICENSE "$root/usr/share/doc/obdgw/copyright"
  cp -r docs "$root/usr/share/doc/obdgw/docs"
  install -m 0755 firmware/deb/postinst firmware/deb/prerm firmware/deb/postrm "$root/DEBIAN/"
  echo /etc/obdgw/obdgw.yaml > "$root/DEBIAN/conffiles"
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat > "$root/DEBIAN/control" <<CTRL
Package: obdgw
Version: $DEBVER
Architecture: $arch
Maintainer: obdgw maintainers <obdgw@localhost>
Installed-Size: $size
Depends: passwd
Section: net
Priority: optional
Homepage: https://github.com/obdgw/obdgw
Description: workshop gateway for OBD adapters and emission rigs
 Reads VINs, fault codes and readiness from ELM327 adapters and emission
 test rigs in a car-repair shop, builds the JT/T 1132 maintenance record and
 the I/M M-station record at settlement, and delivers them to the provincial
 platform over MQTT with TLS, losing nothing through power cuts and outages.
CTRL
  deb="$OUT/obdgw_${DEBVER}_${arch}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
  echo "deb: $deb"
  rm -rf "$root"
  trap - EXIT
done
