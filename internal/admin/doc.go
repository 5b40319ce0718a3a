// Package admin is the admin HTTP listener of `tcpunch serve --admin`:
// /metrics (Prometheus), /livez and /readyz, which turns 503 as soon as a
// drain starts so a load balancer or orchestrator stops sending peers.
//
// It is meant for localhost or a private network: it has no
// authentication, and nothing on it is for the peers.
package admin
