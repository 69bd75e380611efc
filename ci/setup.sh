#!/usr/bin/env bash
# Installs the system libraries tunecheck builds against (Debian/Ubuntu): OpenBLAS for the matrix work,
# libxml2 for JUnit reports, pkg-config to find them. Skips apt when everything is already there.
set -euo pipefail
packages=(libopenblas-dev libxml2-dev zlib1g-dev libxml2-utils pkg-config)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "ci/setup.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "ci/setup.sh: Swift 6 is required (https://www.swift.org/install/linux/)" >&2; exit 1; }
