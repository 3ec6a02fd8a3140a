package api_test

import (
	"fmt"
	"net/url"

	"github.com/plyr-fm/plyrtasks/api"
)

// POST /v1/tasks/{type} takes its options as query parameters; a bad one is
// an error naming it.
func ExampleParseOptions() {
	q, _ := url.ParseQuery("delay=90s&queue=critical&max_retry=0")
	o, err := api.ParseOptions(q)
	fmt.Println(o.ProcessIn, o.Queue, o.Retries(), err)

	q, _ = url.ParseQuery("timeout=500ms")
	_, err = api.ParseOptions(q)
	fmt.Println(err)
	// Output:
	// 1m30s critical 0 <nil>
	// timeout: must be between 1s and 24h
}
