// Package bench is `plyrtasks bench`: it measures, side by side in one
// run on a redis-server of its own, what plyrtasks costs over bare asynq
// and over the Redis itself — no-op tasks/s, enqueue/s, pickup latency at a
// steady rate and into idle queues, Redis commands per task and per idle
// worker per second (top-level and with the commands Lua scripts run), and
// the worker's memory over a long run — and the frontier between pickup
// latency and idle Redis cost that the worker presets sit on.
//
// Why a package and not a go test benchmark: the numbers are a product
// claim (README, "Performance and Redis cost") that an operator can check
// on their own machine with the shipped binary, and memory must be the
// worker's own, so every worker runs as a child process (`plyrtasks bench
// worker`, RunWorker) that the parent drives over stdin/stdout.
//
// How commands are counted, without MONITOR: each measured process talks
// to Redis through a loopback proxy that counts the RESP commands it sends
// (top-level: a script call is one, a pipeline of n is n, Pub/Sub PINGs
// count); INFO commandstats before and after counts every command Redis
// ran, those called from Lua scripts included, since each appears under its
// own cmdstat line. Nothing else talks to the bench's Redis meanwhile (its
// own INFO and CONFIG calls are left out).
package bench
