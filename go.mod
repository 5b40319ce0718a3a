module github.com/tcpunch/tcpunch

go 1.24.0

require (
	github.com/gtank/ristretto255 v0.1.2
	github.com/pion/stun/v3 v3.1.7
	github.com/urfave/cli/v2 v2.27.7
	golang.org/x/sys v0.41.0
)

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/pion/dtls/v3 v3.1.5 // indirect
	github.com/pion/logging v0.2.4 // indirect
	github.com/pion/transport/v4 v4.1.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/wlynxg/anet v0.0.5 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/crypto v0.48.0 // indirect
)
