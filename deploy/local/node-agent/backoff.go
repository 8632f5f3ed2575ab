package main

// Crash-loop backoff, modelled on kubelet: the first restart waits base, each
// further one doubles the wait up to max, and a container that stayed up for
// longer than 2*max (kubelet's backoff-entry expiry) starts over from base.

import "time"

type crashBackoff struct {
	base, max time.Duration
	next      time.Duration // zero until the first restart
}

func newCrashBackoff(base, max time.Duration) *crashBackoff {
	if max < base {
		max = base
	}
	return &crashBackoff{base: base, max: max}
}

// delay returns how long to wait before restarting a container instance that
// ran for ranFor, and advances the backoff.
func (b *crashBackoff) delay(ranFor time.Duration) time.Duration {
	if b.next == 0 || ranFor > 2*b.max {
		b.next = b.base
	}
	d := b.next
	b.next *= 2
	if b.next > b.max {
		b.next = b.max
	}
	return d
}
