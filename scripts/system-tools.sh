#!/bin/sh
# The system tools the tests run for real (DESIGN §5: real redis-server, pebble, openssl, curl,
# nghttp, and git for the fresh-clone test), as the Debian packages that provide them. `npm test`
# runs this first and .ci/run does too. Whatever is missing is installed with apt-get when run as
# root, or with --sudo through sudo that needs no password; otherwise it prints the command to
# run and fails.
set -eu

# command:package
TOOLS='redis-server:redis-server pebble:pebble pebble-challtestsrv:pebble openssl:openssl curl:curl nghttp:nghttp2-client git:git'

missing_packages() {
  missing=''
  for tool in $TOOLS; do
    command -v "${tool%%:*}" >/dev/null 2>&1 && continue
    case " $missing " in
      *" ${tool#*:} "*) ;;
      *) missing="$missing ${tool#*:}" ;;
    esac
  done
  echo "${missing# }"
}

missing=$(missing_packages)
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "The tests need these tools, which are missing: $missing (Debian package names)." >&2
  echo "This script installs them only with apt-get; install them with your package manager." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=''
elif [ "${1:-}" = --sudo ] && sudo -n true 2>/dev/null; then
  as_root='sudo -n'
else
  echo "The tests need these tools, which are missing: $missing. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing" >&2
  exit 1
fi
echo "Installing the tools the tests need: $missing"
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086 # one word per package
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing

still=$(missing_packages)
if [ -n "$still" ]; then
  echo "Installed, yet still not on the PATH: the commands of $still" >&2
  exit 1
fi
