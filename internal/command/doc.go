// Package command implements what the tcpunch subcommands do (serve, listen,
// dial, netcheck, secret, stun, demo): turning flags into library calls, the
// trust they choose (a secret, a one-time code or --insecure), human progress
// on stderr, --report json lines, and errors into documented exit codes.
// main.go only declares the flags and calls in here.
//
// It is internal to the tcpunch binary. Applications use package punch and
// package rendezvous directly.
package command
