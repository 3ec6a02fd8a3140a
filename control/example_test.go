package control_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/plyr-fm/plyrtasks/control"
)

// The API mounts the controls behind its bearer token; the CLI calls the
// same operations straight on Redis or through control.Remote.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	ctl := control.New(rdb, control.Options{Namespace: "plyr"})

	mux := http.NewServeMux()
	for pattern, h := range ctl.Routes() { // api.Options{Routes: ctl.Routes()}
		mux.Handle(pattern, h)
	}

	var c control.Controls = ctl // or &control.Remote{BaseURL: "http://127.0.0.1:8080", Token: token}
	page, err := c.List(context.Background(), control.ListOptions{State: "archived", Type: "export:media"})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range page.Tasks {
		fmt.Println(t.ID, t.LastError)
	}
}
