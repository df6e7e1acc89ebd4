package main

import (
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tables counts the rows of every table.
func (e *env) tables() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, t := range []string{"users", "forum_messages", "donations"} {
		var n int
		require.NoError(e.t, e.db.QueryRow("SELECT count(*) FROM "+t).Scan(&n))
		out[t] = n
	}
	return out
}

// Every form value is checked before anything is stored: a bad one gets a
// 4xx with a message saying what is wrong, and changes no row and no file;
// the home page keeps working.
func TestBadFormValuesChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	before, rows := e.inSync("setup"), e.tables()

	long := strings.Repeat("x", 101)
	for _, c := range []struct {
		path   string
		fields map[string]string
		file   []byte
		want   string
	}{
		{"/forum", map[string]string{"user_id": "abc", "body": "hi"}, png("f"), "user id"},
		{"/forum", map[string]string{"user_id": "abc", "body": "hi"}, nil, "user id"},
		{"/forum", map[string]string{"user_id": "42", "body": "hi"}, png("f"), "no user 42"},
		{"/forum", map[string]string{"user_id": "0", "body": "hi"}, nil, "user id"},
		{"/forum", map[string]string{"user_id": "-1", "body": "hi"}, nil, "user id"},
		{"/forum", map[string]string{"user_id": "1.0", "body": "hi"}, nil, "user id"},
		{"/forum", map[string]string{"user_id": "99999999999999999999", "body": "hi"}, nil, "user id"},
		{"/forum", map[string]string{"user_id": "1", "body": "  "}, png("f"), "message"},
		{"/forum", map[string]string{"user_id": "1"}, nil, "message"},
		{"/forum", map[string]string{"user_id": "1", "body": strings.Repeat("m", 2001)}, nil, "message"},
		{"/forum", map[string]string{"body": "hi"}, nil, "user id"},
		{"/donations", map[string]string{"user_id": "abc", "amount": "10"}, pdf, "user id"},
		{"/donations", map[string]string{"user_id": "7", "amount": "10"}, pdf, "no user 7"},
		{"/donations", map[string]string{"user_id": "1", "amount": "ten"}, pdf, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "-5"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "0"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "1e9"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "NaN"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "10.123"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": "1000000000"}, nil, "amount"},
		{"/donations", map[string]string{"user_id": "1", "amount": ""}, nil, "amount"},
		{"/users", map[string]string{"name": ""}, png("p"), "name"},
		{"/users", map[string]string{"name": "   "}, nil, "name"},
		{"/users", map[string]string{}, nil, "name"},
		{"/users", map[string]string{"name": long}, nil, "name"},
		{"/users", map[string]string{"name": "a\x00b"}, nil, "name"},
		{"/users", map[string]string{"name": "a\nb"}, nil, "name"},
		{"/users", map[string]string{"name": "\xff\xfe"}, nil, "name"},
	} {
		code, body := e.postMultipart(c.path, c.fields, c.file)
		assert.True(t, code >= 400 && code < 500, "%s %v: got %d, want a 4xx", c.path, c.fields, code)
		assert.Contains(t, body, c.want, "%s %v: the message says what is wrong", c.path, c.fields)
		code, _ = e.get("/")
		assert.Equal(t, http.StatusOK, code, "%s %v: the home page still works", c.path, c.fields)
	}
	assert.Equal(t, rows, e.tables(), "no row added")
	assert.Equal(t, before, e.inSync("bad form values"), "no file stored")

	// Good values still go in: an amount with cents, a name in any script.
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": "1", "amount": "12.50"}, nil, ""))
	require.Equal(t, http.StatusSeeOther, e.post("/donations", map[string]string{"user_id": " 1 ", "amount": "3"}, nil, ""))
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "Zoë 李"}, nil, ""))
	require.Equal(t, http.StatusSeeOther, e.post("/forum", map[string]string{"user_id": "2", "body": "line one\nline two"}, nil, ""))
	code, page := e.get("/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(page), "12.50")
	assert.Contains(t, string(page), "Zoë 李")
}

// Ids in paths are positive integers of rows that exist: anything else is
// a 404 that changes nothing.
func TestBadPathIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ann"}, png("pic"), "me.png"))
	before, rows := e.inSync("setup"), e.tables()
	for _, id := range []string{"0", "-1", "abc", "1e3", "99", "01x"} {
		assert.Equal(t, http.StatusNotFound, e.post("/files/picture/"+id, nil, png("x"), "x.png"), id)
		assert.Equal(t, http.StatusNotFound, e.postForm("/qr/"+id, nil).StatusCode, id)
	}
	assert.Equal(t, rows, e.tables())
	assert.Equal(t, before, e.inSync("bad ids"))
}

// The admin form's values are checked too.
func TestBadAdminValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, v := range []url.Values{
		{"action": {"find"}, "min_age": {"soon"}},
		{"action": {"find"}, "min_age": {"-24h"}},
		{"action": {"delete-everything"}},
	} {
		resp := e.postForm("/admin/orphans", v)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, v)
	}
}

// A database made before the checks (and the foreign keys) may hold rows
// whose user id is not a number: the home page still shows them.
func TestHomePageShowsLegacyRows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	legacy, err := sql.Open("sqlite", "file:"+e.dbPath+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(0)")
	require.NoError(t, err)
	defer legacy.Close()
	_, err = legacy.Exec(`INSERT INTO forum_messages (user_id, body) VALUES ('abc', 'from an old form')`)
	require.NoError(t, err)
	_, err = legacy.Exec(`INSERT INTO donations (user_id, amount) VALUES (42, 'ten')`)
	require.NoError(t, err)
	code, page := e.get("/")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(page), "from an old form")
	// And such a row can still be deleted.
	assert.Equal(t, http.StatusSeeOther, e.postForm("/delete/forum_messages/1", nil).StatusCode)
}
