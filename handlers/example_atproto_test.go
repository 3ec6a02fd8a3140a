package handlers_test

import (
	"fmt"
	"time"

	"github.com/plyr-fm/plyrtasks/handlers"
	"github.com/plyr-fm/plyrtasks/store"
)

// A producer can know a like's record URI before pds:like has run: the key
// comes from the row alone (its creation time, to the millisecond the
// store keeps, and its ID).
func ExampleLikeRecordKey() {
	like := store.Like{ID: 7, UserDID: "did:plc:fan", CreatedAt: time.Date(2025, 6, 15, 12, 30, 45, 123456789, time.UTC)}
	fmt.Println("at://" + like.UserDID + "/fm.plyr.like/" + handlers.LikeRecordKey(like))
	// Output: at://did:plc:fan/fm.plyr.like/3lrnhtgalxs2b
}
