#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make demo: the quick start's first command applies the bundled examples to
# a scratch folder, secret included, and says where to look.
# shellcheck disable=SC2016
. "$(dirname "$0")/lib.sh"

test_expect_success 'the demo applies every example resource into its scratch folder only' '
	expect_exit 0 env DRIFTLESS="$DRIFTLESS" "$DL_SRCROOT/scripts/demo.sh" &&
	expect_contains "$SCRATCH/stdout" "applied: 16 created" &&
	expect_contains "$SCRATCH/stdout" "driftless demo in" &&
	expect_contains "$SCRATCH/stdout" "To keep the host equal to Git, run the agent" &&
	dir=$(sed -n "s/^driftless demo in //p" "$SCRATCH/stdout") &&
	test -d "$dir/root/etc/app" &&
	test "$(cat "$dir/root/etc/app/db-password")" = demo-only-password &&
	expect_mode 600 "$dir/root/etc/app/db-password" &&
	! grep -q demo-only-password "$SCRATCH/stdout" "$SCRATCH/stderr" &&
	! grep -rq demo-only-password "$dir/infra" &&
	rm -rf "$dir"
'

test_done
