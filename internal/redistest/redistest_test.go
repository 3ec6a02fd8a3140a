package redistest

import (
	"context"
	"testing"
)

func TestAOFSurvivesCrash(t *testing.T) {
	s := Start(t, Options{AOF: true})
	ctx := context.Background()
	c := s.Client(t, 0)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(true); err != nil {
		t.Fatal(err)
	}
	got, err := s.Client(t, 0).Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after crash restart: got %q, %v; want v", got, err)
	}
}

func TestDBIsolation(t *testing.T) {
	s := Start(t, Options{})
	a, b := s.DB(t), s.DB(t)
	if a == b {
		t.Fatalf("DB handed out %d twice", a)
	}
	ctx := context.Background()
	s.Client(t, a).Set(ctx, "k", "a", 0)
	if n := s.Client(t, b).Exists(ctx, "k").Val(); n != 0 {
		t.Fatalf("key leaked across databases")
	}
}
