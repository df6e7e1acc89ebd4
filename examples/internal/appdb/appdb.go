// Package appdb is the example application's database schema, shared by
// the web service (examples/webapp) and the tests that run the cleanup
// command (examples/cleanup-media) against that service's data.
package appdb

// Schema creates the tables of the seed's application: users with a
// profile picture, an e-signature and an attendance QR code, forum
// messages with an image, and donations with a receipt. Each file column
// holds a stored path, or "" for none.
const Schema = `
CREATE TABLE IF NOT EXISTS users (
	id INTEGER PRIMARY KEY, name TEXT NOT NULL,
	picture TEXT NOT NULL DEFAULT '', signature TEXT NOT NULL DEFAULT '', qr_code TEXT NOT NULL DEFAULT '',
	qr_created INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS forum_messages (
	id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	body TEXT NOT NULL, image TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS donations (
	id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	amount TEXT NOT NULL, receipt TEXT NOT NULL DEFAULT '');`

// Column is one file column: a table, a column, and the directory its
// files go under.
type Column struct {
	Table, Column, Dir string
}

// FileColumns are every column of the schema that holds a stored path.
var FileColumns = []Column{
	{"users", "picture", "profile_pics"},
	{"users", "signature", "e_signatures"},
	{"users", "qr_code", "qr_codes"},
	{"forum_messages", "image", "forum_images"},
	{"donations", "receipt", "donation_receipts"},
}

// RefQueries are the queries that list every referenced stored path, one
// per file column: what the orphan finder must be given, all of them.
func RefQueries() []string {
	qs := make([]string, len(FileColumns))
	for i, c := range FileColumns {
		qs[i] = "SELECT " + c.Column + " FROM " + c.Table
	}
	return qs
}
