package main

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Bounds of the text fields, in characters.
const (
	maxNameLen    = 100
	maxMessageLen = 2000
)

// text returns the form value key, trimmed: present, valid UTF-8, at most
// maxLen characters, and without control characters (line breaks and tabs
// allowed when multiline). label names it in the message.
func text(v url.Values, key, label string, maxLen int, multiline bool) (string, error) {
	s := strings.TrimSpace(v.Get(key))
	switch {
	case s == "":
		return "", userErr(http.StatusBadRequest, "the %s is missing", label)
	case !utf8.ValidString(s):
		return "", userErr(http.StatusBadRequest, "the %s is not valid text", label)
	case utf8.RuneCountInString(s) > maxLen:
		return "", userErr(http.StatusBadRequest, "the %s is too long (at most %d characters)", label, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return "", userErr(http.StatusBadRequest, "the %s has control characters", label)
		}
	}
	return s, nil
}

// amountRE is a positive decimal amount: up to 9 digits, and up to 2 after
// the point.
var amountRE = regexp.MustCompile(`^[0-9]{1,9}(\.[0-9]{1,2})?$`)

func amount(v url.Values) (string, error) {
	s := strings.TrimSpace(v.Get("amount"))
	if !amountRE.MatchString(s) || strings.Trim(s, "0.") == "" {
		return "", userErr(http.StatusBadRequest, "the amount must be a positive decimal number such as 10 or 12.50")
	}
	return s, nil
}

// userID returns the form's user_id: a positive integer, the id of a user
// that exists; and the user's name.
func (a *App) userID(ctx context.Context, v url.Values) (int64, string, error) {
	s := strings.TrimSpace(v.Get("user_id"))
	if s == "" {
		return 0, "", userErr(http.StatusBadRequest, "choose a user: the user id is missing")
	}
	id, err := positiveID(s)
	if err != nil {
		return 0, "", userErr(http.StatusBadRequest, "the user id must be a positive whole number")
	}
	var name string
	err = a.db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", userErr(http.StatusBadRequest, "there is no user %d (deleted meanwhile?)", id)
	}
	return id, name, err
}

// positiveID parses a row id: a positive decimal integer.
func positiveID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err == nil && id <= 0 {
		err = errors.New("not positive")
	}
	return id, err
}

// isForeignKey reports a foreign key violation: the user a row refers to
// was deleted between the check and the insert.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
