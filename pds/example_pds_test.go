package pds_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/plyr-fm/plyrtasks/job"
	"github.com/plyr-fm/plyrtasks/pds"
	"github.com/plyr-fm/plyrtasks/store"
)

// A record key derived from a row's creation time and ID: every attempt of
// a task computes the same key, so a retry rewrites the record instead of
// adding one.
func ExampleTID() {
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println(pds.TID(created, 0))
	fmt.Println(pds.TID(created, 1024+5) == pds.TID(created, 5)) // clock ID is mod 1024
	// Output:
	// 3lenax2ss2222
	// true
}

// Classify decides retry or archive from the PDS's answer.
func ExampleClassify() {
	bad := pds.Classify(&pds.XRPCError{Method: "com.atproto.repo.putRecord", Status: 400, Name: "InvalidRequest", Message: "Invalid $type"})
	fmt.Println(job.IsPermanent(bad), bad)

	var ra *job.RetryAfterError
	limited := pds.Classify(&pds.XRPCError{Method: "com.atproto.repo.putRecord", Status: 429, RetryAfter: 5 * time.Second})
	fmt.Println(errors.As(limited, &ra), ra.After)

	down := pds.Classify(&pds.XRPCError{Method: "com.atproto.repo.putRecord", Status: 502})
	fmt.Println(job.IsPermanent(down))
	// Output:
	// true com.atproto.repo.putRecord: HTTP 400 InvalidRequest: Invalid $type
	// true 5s
	// false
}

// Acting as a user: load the session a task names, write a record at a
// deterministic key, and leave through Classify.
func ExampleClient_Session() {
	var st store.Store // the worker's store (store.Open)
	c, err := pds.New(pds.Options{Store: st /* , Redis: rdb */})
	if err != nil {
		log.Fatal(err)
	}
	work := func(ctx context.Context, sessionID string, like store.Like, subject pds.StrongRef) error {
		sess, err := c.Session(ctx, sessionID) // permanent "session expired" if gone
		if err != nil {
			return err
		}
		rec := pds.LikeRecord{Subject: subject, CreatedAt: pds.Datetime(like.CreatedAt)}
		_, err = sess.PutRecord(ctx, "fm.plyr.like", pds.TID(like.CreatedAt, like.ID), rec, pds.Swap{})
		return pds.Classify(err)
	}
	_ = work
}
