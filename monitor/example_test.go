package monitor_test

import (
	"fmt"

	"github.com/plyr-fm/plyrtasks/monitor"
)

// The dashboard shows payloads and results through FormatPayload and
// FormatResult: indented JSON, secrets and comment text redacted.
func ExampleFormatPayload() {
	fmt.Println(monitor.FormatPayload("pds:comment-create", []byte(`{"comment_id":7,"session_id":"s1","text":"great track!"}`)))
	// Output:
	// {
	//   "comment_id": 7,
	//   "session_id": "s1",
	//   "text": "[redacted]"
	// }
}
