package main

import "github.com/dustin/go-humanize"

// human formats a byte count as the seed's reports did: 12 MB.
func human(n int64) string { return humanize.Bytes(uint64(max(n, 0))) }
