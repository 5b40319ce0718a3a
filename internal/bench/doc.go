// Package bench is the benchmark suite behind the hidden `tcpunch bench`
// command: time to connect through the real-NAT lab, what the quick NAT check
// adds to it, rendezvous capacity on loopback (idle listeners, pairing,
// accept burst, STUN rate side by side with coturn), the data path (punched
// connection against plain TCP, the CLI pipe against socat) and the secure
// link (secret and code mode against --insecure). See BENCHMARKS.md at the
// repository root.
//
// Every benchmark is bounded in count and time and stops by itself. All
// traffic goes to loopback (127.0.0.0/8) or to addresses inside the lab's
// network namespaces, never anywhere else. Linux only; elsewhere the command
// says so.
//
// It measures and asserts nothing: correctness lives in the tests, and a
// figure belongs in BENCHMARKS.md only with the command that produced it.
package bench
