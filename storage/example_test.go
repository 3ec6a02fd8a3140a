package storage_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/plyr-fm/plyrtasks/storage"
)

// An upload is invisible until Complete; Abort discards it.
func ExampleFile() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "storage-example-")
	defer os.RemoveAll(dir)
	s, err := storage.NewFile(dir)
	if err != nil {
		log.Fatal(err)
	}

	u, _ := s.Create(ctx, "exports/e1/out.txt", storage.CreateOptions{})
	io.WriteString(u, "hello, ")
	_, err = s.Stat(ctx, "exports/e1/out.txt")
	fmt.Println("before Complete, missing:", err != nil)
	io.WriteString(u, "world")
	obj, _ := u.Complete(ctx)
	fmt.Println("size:", obj.Size)

	rc, _ := s.Open(ctx, "exports/e1/out.txt", 7)
	b, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(string(b))

	// A crashed writer's leftover is cleaned up by prefix.
	s.Create(ctx, "exports/e2/out.txt", storage.CreateOptions{})
	n, _ := s.AbortUploads(ctx, "exports/e2/")
	fmt.Println("aborted:", n)

	_, err = storage.Put(ctx, s, "audio/a.txt", strings.NewReader("abc"), storage.CreateOptions{})
	fmt.Println(err)
	// Output:
	// before Complete, missing: true
	// size: 12
	// world
	// aborted: 1
	// <nil>
}
