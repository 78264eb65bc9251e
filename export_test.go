package quorum

// OnStuckRequest makes c call fn whenever a request starts waiting for a
// frozen node, so that a test knows the request is in flight.
func OnStuckRequest(c *SimCluster, fn func(id uint32)) {
	c.mu.Lock()
	c.stuck = fn
	c.mu.Unlock()
}
