// Package ingress is what `tcpunch serve` puts between its listening
// socket and the rendezvous server: the PROXY protocol (v2, and v1) for a
// server behind an L4 load balancer, and a watcher that warns when one
// seems to be in front without it.
//
// Both are net.Listener wrappers, so the server needs no change: it takes
// the observed endpoint from conn.RemoteAddr(), which for a proxied
// connection is the source address in the PROXY header.
//
// Do not use the PROXY listener where untrusted sources can reach it with
// --proxy-protocol-from set to them: a header from a trusted source is
// believed, so anyone trusted can claim any address.
package ingress
