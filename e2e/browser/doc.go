// Package browser drives the real dashboard in headless Chromium (Debian's
// chromium package, /usr/bin/chromium): the plyrtasks binary runs `serve` on
// embedded defaults, and the test logs in through the HTTP basic-auth
// challenge, reads the queues, opens tasks, checks that comment text is
// redacted and that the read-only viewer cannot change anything, and saves
// full-page screenshots as test artifacts.
//
// Environment:
//
//   - PLYRTASKS_ARTIFACTS_DIR: directory the screenshots go to (created
//     when missing; a relative path is relative to this package's
//     directory). Default: a temporary directory removed after the test;
//     the test logs each screenshot's path either way.
//   - PLYRTASKS_REQUIRE_BROWSER=1: fail instead of skipping when Chromium
//     is not installed (CI sets it).
//   - PLYRTASKS_CHROMIUM: the browser binary. Default /usr/bin/chromium,
//     else "chromium" on PATH.
//
// The package has no code outside its tests.
package browser
