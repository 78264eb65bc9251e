//go:build linux && (amd64 || arm64)

package qbipc

// semSupported: the glibc sem_t layout in sem.go is the one these 64-bit
// ports use.
const semSupported = true
