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
// (internal/logcheck).
//
// The package has no code outside its tests.
package logs
