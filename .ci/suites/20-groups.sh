#!/usr/bin/env bash
# Consumer-group compatibility suite: confluent-kafka (KIP-848 consumer protocol and classic) and kafka-python
# (PyPI) against a freshly started `busbar broker`: members joining and leaving mid-stream with every record
# processed exactly once and no partition owned twice, a SIGKILLed member evicted after its session timeout, admin
# list/describe/lag/reset/delete. The suite itself is broker/compat/groups/run.sh (also runnable alone); it uses
# $BUSBAR_BIN when .ci/run passes it, installs its clients by name and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bash broker/compat/groups/run.sh
