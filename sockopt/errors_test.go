package sockopt

import (
	"errors"
	"fmt"
	"testing"
)

// Every "cannot do that here" sentinel matches errors.ErrUnsupported, also
// when wrapped, and still matches itself.
func TestUnsupportedSentinels(t *testing.T) {
	for _, err := range []error{ErrUnsupported, ErrNoRTT, ErrNoState, ErrNoRetransmitControl} {
		wrapped := fmt.Errorf("doing something: %w", err)
		if !errors.Is(wrapped, errors.ErrUnsupported) || !errors.Is(wrapped, err) {
			t.Errorf("%q: errors.Is ErrUnsupported %v, itself %v; want both", err, errors.Is(wrapped, errors.ErrUnsupported), errors.Is(wrapped, err))
		}
	}
	if errors.Is(ErrNoRTT, ErrNoState) {
		t.Error("two different sentinels match each other")
	}
}
