#!/bin/sh
':' //; export RESTIC_TS_DEFERRED_CA_CERTS="${NODE_EXTRA_CA_CERTS-}"; unset NODE_EXTRA_CA_CERTS; exec node "$0" "$@"
// The `restic-ts` command. Line 2 is shell to a POSIX sh and an expression with a comment to Node: it
// starts Node without NODE_EXTRA_CA_CERTS, which Node 20 parses with all its own roots before any
// script runs (~0.09 s per command); the CLI's TLS clients add that bundle themselves when they
// connect (src/backends/trust.ts) and child processes get the variable back.
import '../dist/src/cli/main.js';
