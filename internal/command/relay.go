package command

import (
	"errors"
	"fmt"

	"github.com/tcpunch/tcpunch/punch"
	"github.com/tcpunch/tcpunch/rendezvous"
)

// checkRelay validates --relay and --relay-budget.
func (p *Peer) checkRelay() error {
	if p.Relay != "" {
		if _, err := punch.ParseRelayMode(p.Relay); err != nil {
			return usageError("--relay %q: use auto, never or always", p.Relay)
		}
	}
	if p.RelayBudget < 0 {
		return usageError("--relay-budget must not be negative")
	}
	return nil
}

func (p *Peer) relayOptions() []punch.Option {
	var opts []punch.Option
	if m, err := punch.ParseRelayMode(p.Relay); err == nil {
		opts = append(opts, punch.WithRelay(m))
	}
	if p.RelayBudget > 0 {
		opts = append(opts, punch.WithRelayBudget(p.RelayBudget))
	}
	return opts
}

// relayCause is the short reason why the relay did not connect.
func relayCause(err error) string {
	var se *rendezvous.ServerError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("the server refused it (%d %s)", se.Code, se.Reason)
	case errors.Is(err, rendezvous.ErrRelayRefused):
		return "the server refused it"
	}
	return rootCause(err)
}

// relayLine is the progress line for a relay event, "" if none.
func relayLine(ev punch.Event) string {
	switch ev.Kind {
	case punch.EventRelaying:
		return ev.Detail
	case punch.EventRelayFailed:
		line := "the relay did not connect: " + relayCause(ev.Err)
		if ev.Detail != "" {
			line += "; " + ev.Detail
		}
		return line
	}
	return ""
}
