//go:build linux && !(amd64 || arm64)

package qbipc

// semSupported: 32-bit glibc encodes the value and waiter bit differently,
// and other ports are untested, so SHM is refused there.
const semSupported = false
