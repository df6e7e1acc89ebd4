package storage

// guardRoot keeps RemoveEmptyDirs from ever removing the root. Only this
// package's tests turn it off, to show that it is load-bearing (P8).
var guardRoot = true
