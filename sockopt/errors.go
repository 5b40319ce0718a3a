package sockopt

import "errors"

// unsupported is a sentinel for something this operating system or kernel
// cannot do. It matches errors.ErrUnsupported too, so callers that do not
// care which feature is missing need not list them.
type unsupported string

func (e unsupported) Error() string { return string(e) }
func (e unsupported) Unwrap() error { return errors.ErrUnsupported }
