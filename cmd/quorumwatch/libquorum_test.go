//go:build libquorum && cgo && linux

package main

// libquorumBuilt says whether this test binary has the libquorum backend.
const libquorumBuilt = true
