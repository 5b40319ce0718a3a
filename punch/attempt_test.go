package punch

import (
	"testing"
	"time"
)

// TestRefusedPauseBounds: the pause after a refusal stays within its floor
// and the jitter's upper bound, also when WithRetryJitter(0, 0) leaves no
// random part (that once panicked in rand.N).
func TestRefusedPauseBounds(t *testing.T) {
	for _, tc := range []struct {
		min, max, took time.Duration
	}{
		{0, 0, time.Millisecond},
		{0, 0, 0},
		{defaultJitterMin, defaultJitterMax, 0},
		{defaultJitterMin, defaultJitterMax, 40 * time.Millisecond},
		{defaultJitterMin, defaultJitterMax, time.Second},
	} {
		c, err := newConfig([]Option{WithRetryJitter(tc.min, tc.max)})
		if err != nil {
			t.Fatalf("WithRetryJitter(%v, %v): %v", tc.min, tc.max, err)
		}
		for range 100 {
			got := c.refusedPause(tc.took)
			if got < refusedFloor || got > refusedFloor+max(tc.max, 0) {
				t.Fatalf("jitter %v–%v, refusal after %v: pause %v, want %v to %v", tc.min, tc.max, tc.took, got, refusedFloor, refusedFloor+tc.max)
			}
		}
	}
}
