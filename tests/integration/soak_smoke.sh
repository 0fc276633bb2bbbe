#!/usr/bin/env bash
# The soak (tests/soak/soak, `make soak`) for 30 s against this build, so that
# it cannot rot: every load at once (byte-exact streams, slow readers, wrk,
# garbage TLS, a server killed and restarted, reloads, drains), then nothing
# lost, descriptors and buffers back to idle, RSS flat after warm-up (not
# judged for sanitizer builds). Skips, like the soak, without root or wrk.
set -u
: "${SNATPROXY:?SNATPROXY must name the built binary}"
exec "$(dirname "$0")/../soak/soak" --minutes 0.5 --interval 2 --build "$(dirname "$SNATPROXY")"
