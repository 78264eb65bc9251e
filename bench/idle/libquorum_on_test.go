//go:build libquorum && cgo && linux

package main

const libquorumBuilt = true
