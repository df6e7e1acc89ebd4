package main

import (
	"database/sql"
	"net/http"
	"time"
)

// openDB opens the SQLite database at path with the connection settings
// the service relies on: a busy timeout, WAL and enforced foreign keys.
func openDB(path string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
}

// Server returns the HTTP server run serves the application with.
func (a *App) Server() *http.Server {
	return &http.Server{Handler: a.Routes(), ReadHeaderTimeout: 10 * time.Second}
}
