#!/usr/bin/env bash
# The JavaScript, Python and Rust example connectors built from source and driven through `busbar connector
# inspect|test`; the same suite CI runs. See .ci/suites/30-connectors.sh.
exec "$(dirname "$0")/../../.ci/suites/30-connectors.sh" "$@"
