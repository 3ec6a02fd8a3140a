// Package faults is plyrtasks' fault suite: tests that run the real
// plyrtasks binary (worker, serve, the CLI) against real redis-server
// processes and real or loopback external services, break something on
// purpose — kill -9 a worker mid-task, SIGTERM it, crash Redis, kill its
// connections, fail over a Sentinel group, feed garbage — and assert exact
// outcomes: every task completes, nothing is lost, side effects happen as
// if once.
//
// The package has no code of its own; run it with
//
//	go test -race ./faults/...
//
// Every scenario is bounded in time and uses loopback addresses only. The
// README's "Reliability" section lists each scenario and what it proves.
package faults
