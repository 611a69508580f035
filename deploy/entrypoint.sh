#!/bin/sh
# `service NAME` runs one nameko service with its config; anything else runs as given.
# exec: the service is PID 1's only child, so SIGTERM reaches nameko and drains it.
set -eu
if [ "${1:-}" = "service" ]; then
  name="${2:?usage: service identity|accounts|billing|payments|notifications|gateway}"
  case "$name" in
    identity|accounts|billing|payments|notifications|gateway) ;;
    *) echo "muniportal: unknown service '$name'" >&2; exit 2 ;;
  esac
  exec nameko run --config "services/$name/config.yaml" "services.$name.service"
fi
exec "$@"
