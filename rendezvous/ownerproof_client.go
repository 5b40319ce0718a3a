package rendezvous

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"time"
)

// WithOwnerKey makes [Register] and [Connect] prove ownership of a
// protected name (see [ProtectedName]) with priv, whose public key must be
// the one the name is derived from. When the server challenges a request
// (401 with a NONCE) the client signs the challenge and sends the request
// once more on the same connection; a live [Registration] proves again on
// every reconnection. If the server refuses the proof, the call fails with
// an error matching [ErrUnauthorized] (a Connect: [ErrUnknownName]). priv
// must be a 64-byte Ed25519 private key; nil means no key (the default).
func WithOwnerKey(priv ed25519.PrivateKey) ClientOption {
	return clientOptionFunc(func(c *clientConfig) {
		if priv == nil {
			c.ownerKey = nil
			return
		}
		if len(priv) != ed25519.PrivateKeySize {
			c.invalid(fmt.Sprintf("WithOwnerKey(%d bytes)", len(priv)), fmt.Sprintf("an Ed25519 private key is %d bytes", ed25519.PrivateKeySize))
			return
		}
		c.ownerKey = priv
	})
}

// checkOwnerName refuses, before anything is sent, an owner key for a name
// it does not own: the server could only refuse the proof.
func (c *clientConfig) checkOwnerName(name string) error {
	if c.ownerKey == nil {
		return nil
	}
	if want := ProtectedName(c.ownerKey.Public().(ed25519.PublicKey)); name != want {
		return invalidOption("WithOwnerKey", fmt.Sprintf("the key owns the name %q, not %q", want, name))
	}
	return nil
}

// request is roundTrip plus the owner-proof challenge: on a 401 carrying a
// NONCE, and with an owner key, it signs and resends req once, on this
// connection. Without a key, or when the proof is refused, the error
// matches ErrUnauthorized.
func (c *controlConn) request(ctx context.Context, req *message) (*message, error) {
	resp, err := c.roundTrip(ctx, req)
	var se *ServerError
	if err == nil || !errors.As(err, &se) || se.Code != CodeUnauthorized || se.nonce == nil {
		return resp, err
	}
	key := c.cfg.ownerKey
	if key == nil {
		return nil, fmt.Errorf("%q is a protected name and no owner key was given: %w", req.Name, err)
	}
	proven := *req
	proven.TxID = newTxID()
	proven.OwnerProof = signOwnerProof(key, req.Type.Method, se.nonce, req.Name)
	resp, err = c.roundTrip(ctx, &proven)
	if errors.Is(err, ErrUnauthorized) {
		return nil, fmt.Errorf("the server refused our proof of owning %q: %w", req.Name, err)
	}
	return resp, err
}

// nameTakenPatience is how long a reconnecting Registration retries 409s
// whose holder its resume token does not match. The holder may still be a
// connection of ours the server has not yet seen die (a registration whose
// answer was lost); three keepalive periods cover that. Past it the holder
// is another listener (a server restart lost our token, and someone took
// the name first), and retrying forever would hide that.
func (r *Registration) nameTakenPatience() time.Duration { return 3 * r.cfg.keepAlive }

// reconnectVerdict returns the error that ends a Registration's
// reconnection, nil to retry. takenSince tracks the current run of 409s.
func (r *Registration) reconnectVerdict(err error, takenSince *time.Time) error {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return err
	case errors.Is(err, ErrNameTaken):
		if takenSince.IsZero() {
			*takenSince = time.Now()
		}
		if time.Since(*takenSince) >= r.nameTakenPatience() {
			return fmt.Errorf("name taken by another listener (still refused after %v): %w", r.nameTakenPatience(), err)
		}
	default:
		*takenSince = time.Time{}
	}
	return nil
}

// fail ends the Registration with err: Next returns it from then on.
func (r *Registration) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	r.log.Warn("registration ended", "err", err)
}

// endErr is what Next returns once the registration has ended.
func (r *Registration) endErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return fmt.Errorf("rendezvous: registration of %q: %w", r.name, r.err)
	}
	return fmt.Errorf("rendezvous: registration of %q: %w", r.name, net.ErrClosed)
}
