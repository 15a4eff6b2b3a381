#!/usr/bin/env bash
# Debian packages bowlsense needs beyond Python and gcc: the ARM cross compiler and newlib, QEMU
# (system mode for the firmware and the Cortex-M front end harness), clang for the build matrix and
# espeak-ng for the synthetic demo's speech. Installs only what is missing, and only as root;
# otherwise prints the command to run. --no-install-recommends keeps it at ~120 MB instead of 3 GB.
set -euo pipefail

declare -A tool_pkgs=(
  [arm-none-eabi-gcc]="gcc-arm-none-eabi libnewlib-arm-none-eabi"
  [qemu-system-arm]="qemu-system-arm"
  [clang]="clang"
  [espeak-ng]="espeak-ng"
)
missing=()
for tool in "${!tool_pkgs[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=(${tool_pkgs[$tool]})
done
[ -d /usr/lib/arm-none-eabi/newlib ] || missing+=(libnewlib-arm-none-eabi)
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "system packages installed"
