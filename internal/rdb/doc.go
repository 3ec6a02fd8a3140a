// Package rdb holds every Redis Lua script plyrtasks runs beside asynq's
// own, with the key layout they touch: unique locks that die with their
// task, the repair of task IDs whose task hash is gone, the periodic
// scheduler's entries as asynqmon reads them, and session refresh locks.
//
// Every script is Redis Cluster safe: the keys one script touches share one
// hash tag, the queue's "{<queue>}" that asynq's own keys use, so a script
// may also build a task key from a prefix in that same slot (as asynq's
// scripts do).
//
// The asynq key layout mirrored here is asynq v0.26.0's (internal/base);
// the tests run it against asynq's Inspector so a change would show.
package rdb
