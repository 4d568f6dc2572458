package jetstream

// Waiting is how many Submits wait for d's window.
func Waiting(d *Destination) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.queue)
}
