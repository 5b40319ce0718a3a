// Package bench is the benchmark suite behind the hidden `tcpunch bench`
// command: time to connect through the real-NAT lab, rendezvous capacity
// on loopback (idle listeners, pairing, accept burst, STUN rate side by side
// with coturn) and the data path (punched connection against plain TCP, the
// CLI pipe against socat). See BENCHMARKS.md at the repository root.
//
// Every benchmark is bounded in count and time and stops by itself. All
// traffic goes to loopback (127.0.0.0/8) or to addresses inside the lab's
// network namespaces, never anywhere else. Linux only; elsewhere the command
// says so.
package bench
