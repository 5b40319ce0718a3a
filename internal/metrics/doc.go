// Package metrics is the Prometheus side of `tcpunch serve`: a
// [rendezvous.Tracer] that counts what the server does on a
// prometheus.Registry of its own, served by the admin listener (package
// admin) at /metrics.
//
// Labels come only from small fixed sets (method, result, family, path,
// reason, NAT class): a value outside its set is counted as "other", so no
// client can grow the number of series. No label ever holds a name, an
// address or anything derived from a secret.
//
// Use it for the tcpunch command; a program that embeds rendezvous.Server
// and has its own metrics system implements rendezvous.Tracer itself.
package metrics
