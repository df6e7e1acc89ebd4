package orphan

// guards are the finder's safety checks. Only this package's tests turn
// one off, to show that it is load-bearing (P8): with it off, a test that
// passes with it on must fail. Production code never changes them.
var guards = struct {
	provider bool // a provider error aborts (O2)
	empty    bool // an empty reference set is refused (O3)
	grace    bool // young files are never orphans (O4)
	limits   bool // plans over a limit are refused (O8)
	recheck  bool // Apply re-checks references and file state (O7)
}{true, true, true, true, true}
