package main

import (
	"testing"
	"time"
)

func TestCrashBackoffDoublesUpToMax(t *testing.T) {
	b := newCrashBackoff(time.Second, 10*time.Second)
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		if got := b.delay(0); got != w*time.Second {
			t.Fatalf("restart %d: got %v, want %v", i, got, w*time.Second)
		}
	}
}

func TestCrashBackoffResetsAfterLongRun(t *testing.T) {
	b := newCrashBackoff(time.Second, 10*time.Second)
	b.delay(0)
	b.delay(0)
	if got := b.delay(21 * time.Second); got != time.Second {
		t.Fatalf("after a long run: got %v, want 1s", got)
	}
	if got := b.delay(0); got != 2*time.Second {
		t.Fatalf("next: got %v, want 2s", got)
	}
}

func TestCrashBackoffKubeletDefaults(t *testing.T) {
	b := newCrashBackoff(10*time.Second, 5*time.Minute)
	var last time.Duration
	for range 10 {
		last = b.delay(0)
	}
	if last != 5*time.Minute {
		t.Fatalf("got %v, want 5m cap", last)
	}
}
