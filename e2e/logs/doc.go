// Package logs checks the rule "no token, password or comment text in any
// log line" against a full run of the real binary: `plyrtasks serve` on
// embedded defaults, in both log formats, with every secret plyrtasks
// handles set to a known value (API token, dashboard passwords, session
// encryption key, a stored session's access and refresh tokens, the tokens a
// refresh hands back, the moderation key, comment texts). The run enqueues
// over HTTP and through the CLI, fails, retries, archives, refreshes a
// session, scans and reports a copyright flag, serves the dashboard and
// /metrics; then everything the process wrote, and everything the CLI and
// the API showed, is searched for each secret raw and encoded
// (internal/logcheck). It also checks the formats (text without colour codes
// when not written to a terminal, JSON as one object per line) and that
// each task run logs exactly one outcome line (kind, task id, attempt,
// outcome), as many as plyrtasks_tasks_processed_total counted.
//
// The stored session is added with `plyrtasks session add` on the test PDS
// (PLYRTASKS_TEST_PDS_URL, default http://localhost:2583) through a
// loopback proxy that makes its access token expire, so the comment task
// refreshes it. Without a PDS the rest runs and the test ends skipped with
// a loud message; PLYRTASKS_REQUIRE_PDS=1 makes that a failure. The
// moderation service and labeler are moderation/moderationtest's fake.
//
// The package has no code outside its tests.
package logs
