// Package memfstesting shows how to unit-test your own handlers that use
// mediaclean: run them on afero.MemMapFs for speed, and on
// storagetest.FaultFs to see what a full disk does to them. The handler
// here is ordinary application code; avatar_test.go is the part to copy.
package memfstesting

import (
	"errors"
	"net/http"
	"sync"

	"github.com/spf13/afero"

	"github.com/mediaclean/mediaclean/filefield"
)

// Avatars is a tiny application: one avatar path per user, kept in a map
// that stands in for a database table.
type Avatars struct {
	field *filefield.Field
	mu    sync.Mutex
	rows  map[string]string // user -> stored path
}

// NewAvatars returns the application over fsys.
func NewAvatars(fsys afero.Fs) *Avatars {
	return &Avatars{field: filefield.New("avatars", fsys, filefield.Options{Dir: "avatars/{owner}"}), rows: map[string]string{}}
}

// Path returns the user's current avatar path.
func (a *Avatars) Path(user string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rows[user]
}

// ServeHTTP handles POST /avatar?user=NAME with a multipart "file".
func (a *Avatars) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, err := a.field.FormFile(r.Context(), r, "file", a.rows[user], user)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, filefield.ErrTypeNotAllowed) || errors.Is(err, filefield.ErrUnsafePath) || errors.Is(err, http.ErrMissingFile) {
			code = http.StatusBadRequest
		}
		http.Error(w, err.Error(), code)
		return
	}
	defer ch.Rollback(r.Context()) // a no-op once committed
	a.rows[user] = ch.New          // the "UPDATE", which cannot fail here
	ch.Commit(r.Context())
	w.WriteHeader(http.StatusNoContent)
}
