# make demo   quorumwatch on a real 3-node corosync cluster in network
#             namespaces (as root; installs missing Debian packages first),
#             or on the simulated cluster when not root.
# make test   the CI checks (.ci/run).
#
# Variables:
#   DEMO_FLAGS  flags for the demo program: -json (quorumwatch prints JSON
#               lines), -fast (shorter pauses between steps)
#   DEMO_SIM=1  take the path of a user who is not root: the simulated
#               cluster, nothing installed
#   GO          the go command (default: go in PATH, else /usr/local/go/bin/go)

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
DEMO_FLAGS ?=
DEMO_SIM ?=
# corosync and its tools run the cluster, the -dev packages, pkg-config and a
# C compiler build the libquorum backend (cgo), iproute2 makes the network
# namespaces, util-linux has setpriv.
# The binaries live in a temporary folder for one run: stamping them with
# VCS data buys nothing, and fails for a user who does not own the checkout.
DEMO_BUILDFLAGS := -buildvcs=false
DEMO_PKGS := corosync libquorum-dev libvotequorum-dev libcmap-dev libcorosync-common-dev pkg-config iproute2 util-linux gcc libc6-dev

# Each recipe runs in one shell, so that its temporary folder and traps
# cover all of its lines.
.ONESHELL:
SHELL := /bin/sh
.SHELLFLAGS := -eu -c

.PHONY: demo test

test:
	bash .ci/run

demo:
	@if ! command -v "$(GO)" >/dev/null 2>&1; then
		echo "make demo: no go command found (set GO=/path/to/go)" >&2
		exit 1
	fi
	tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/quorum-demo.XXXXXX")
	trap 'rm -rf "$$tmp"' EXIT
	trap 'rm -rf "$$tmp"; exit 130' INT TERM
	if [ -n "$(DEMO_SIM)" ] || [ "$$(id -u)" -ne 0 ]; then
		echo "make demo: a real cluster needs root (it creates network namespaces and runs corosync in them), so this plays quorumwatch's simulated cluster instead"
		"$(GO)" build $(DEMO_BUILDFLAGS) -o "$$tmp/quorumwatch" ./cmd/quorumwatch
		rc=0
		"$$tmp/quorumwatch" --sim $(if $(filter -json --json,$(DEMO_FLAGS)),--json) || rc=$$?
		exit $$rc
	fi
	if command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
		missing=
		for p in $(DEMO_PKGS); do
			dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"
		done
		if [ -n "$$missing" ]; then
			echo "make demo: installing$$missing"
			apt-get update
			DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing
		fi
	else
		echo "make demo: no dpkg/apt-get here; install corosync, its quorum development files, pkg-config, iproute2, util-linux and a C compiler yourself" >&2
	fi
	if [ "$$("$(GO)" env CGO_ENABLED)" != 1 ]; then
		echo "make demo: cgo is disabled (CGO_ENABLED=0 or no C compiler), and the libquorum backend needs it" >&2
		exit 1
	fi
	echo "make demo: building quorumwatch and the demo with -tags libquorum"
	"$(GO)" build $(DEMO_BUILDFLAGS) -tags libquorum -o "$$tmp/quorumwatch" ./cmd/quorumwatch
	"$(GO)" build $(DEMO_BUILDFLAGS) -tags libquorum -o "$$tmp/demo" ./internal/cmd/demo
	# Ctrl-C reaches the demo too, which then tears the cluster down: the
	# shell waits for that instead of dying first.
	trap '' INT
	rc=0
	"$$tmp/demo" -quorumwatch "$$tmp/quorumwatch" $(DEMO_FLAGS) || rc=$$?
	exit $$rc
