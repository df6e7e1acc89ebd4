package storage_test

import (
	"testing"

	"go.uber.org/goleak"
)

// ListTree starts worker goroutines: every test must leave none behind,
// including the ones that stop a listing early.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
