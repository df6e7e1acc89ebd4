package sweep

// guards are the sweeper's safety checks. Only this package's tests turn
// one off, to show that it is load-bearing (P8): with it off, a test that
// passes with it on must fail. Production code never changes them.
var guards = struct {
	regularOnly bool // never remove a symlink, FIFO, socket or device
	validPath   bool // never remove a path ValidPath refuses
}{true, true}
