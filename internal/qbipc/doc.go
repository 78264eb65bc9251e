// Package qbipc is a client of libqb's IPC protocol, the transport under
// corosync's client libraries, written in Go without cgo.
//
// It connects to a service's abstract unix socket, performs libqb's
// handshake, checks the server's credentials, and then exchanges messages
// over whichever transport the server chose: three shared-memory rings with
// process-shared glibc semaphores (SHM), or unix datagram sockets (SOCKET).
// docs/native-protocol.md in the module describes the protocol as this
// package implements it.
//
// Everything read from the server, through a socket or shared memory, is
// treated as untrusted: lengths, offsets and counts are bounds-checked, and
// faults on a mapping that shrinks under the client become errors.
//
// Errors are *cs.Error values whose Code follows libqb's errno conversion
// (a dead server is cs.ErrLibrary), with the errno or a description as Err.
package qbipc
