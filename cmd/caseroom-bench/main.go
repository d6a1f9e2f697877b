// Command caseroom-bench is the load generator for caseroom's performance
// targets (docs/performance.md). It drives the production path: HTTP posts
// with real access tokens through the auth middleware, the ACL and the
// hash-chained store, and WebSocket clients speaking docs/protocol.md.
//
//	caseroom-bench run  -users FILE -url http://127.0.0.1:8080 [flags]   run phases, print JSON and a table
//	caseroom-bench history -users FILE -url … [-n 2000]                   latest-50 history latency
//	caseroom-bench table RESULT.json …                                     Markdown table of results
//
// Users come from "caseroomd admin bench-provision FILE" (created once, with
// argon2id, through the directory); each run refreshes their tokens (or reuses
// access tokens still valid for minutes) and writes the rotated refresh tokens
// back to FILE at once, so that the lockout and rate limits stay as they are.
//
// Sockets are spread over child processes (one process's open-file limit) and
// over 127.0.0.x source addresses; rooms never span processes, so each
// post's sender and receivers share a process and a clock. Every phase is
// bounded in time, the whole run by -deadline, and only loopback targets are
// accepted.
package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

const usage = `usage: caseroom-bench COMMAND [flags]

commands:
  run       connect users, run phases (idle, sat, lat, storm, ingest), verify, report
  history   latency of "the latest 50 messages of a room" over HTTP
  table     print a Markdown table of one or more RESULT JSON files

Run "caseroom-bench COMMAND -h" for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runMain(os.Args[2:])
	case "child":
		err = childMain(os.Args[2:])
	case "history":
		err = historyMain(os.Args[2:])
	case "table":
		err = tableMain(os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "caseroom-bench:", err)
		os.Exit(1)
	}
}

// checkLoopback refuses a target that is not a loopback address: this tool
// sends load, and load goes to this machine only.
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("-url %q: want http://127.0.0.1:PORT", raw)
	}
	h := u.Hostname()
	if h == "localhost" {
		return nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing non-loopback target %q: caseroom-bench sends load to this machine only", raw)
	}
	return nil
}

func wsURL(base string) string {
	return "ws" + strings.TrimPrefix(strings.TrimRight(base, "/"), "http") + "/api/v1/ws"
}
