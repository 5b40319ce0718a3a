// Package testnet holds network fixtures that tests of several packages
// share. It is for tests only; nothing in a binary imports it.
package testnet
