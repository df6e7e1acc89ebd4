package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mediaclean/mediaclean/filefield/storage/storagetest"
)

var (
	formRE  = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	inputRE = regexp.MustCompile(`<input\b[^>]*>`)
	attrRE  = regexp.MustCompile(`\b(name|value|type|action)="([^"]*)"`)
)

// pageForm finds the form of page whose button says button and returns
// its action and the values a browser would send for its inputs as the
// page shows them (text and hidden inputs with their value attributes).
func pageForm(t *testing.T, page []byte, button string) (string, url.Values) {
	t.Helper()
	for _, m := range formRE.FindAllStringSubmatch(string(page), -1) {
		if !strings.Contains(m[2], button) {
			continue
		}
		action := ""
		for _, a := range attrRE.FindAllStringSubmatch(m[1], -1) {
			if a[1] == "action" {
				action = html.UnescapeString(a[2])
			}
		}
		values := url.Values{}
		for _, in := range inputRE.FindAllString(m[2], -1) {
			attrs := map[string]string{}
			for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["name"] != "" && attrs["type"] != "file" {
				values.Set(attrs["name"], attrs["value"])
			}
		}
		return action, values
	}
	t.Fatalf("no form with a button %q on the page:\n%s", button, page)
	return "", nil
}

// A dry run with grace period 0 lists a file that was just written, and
// the page's "Delete these orphans" button deletes it: the apply carries
// the grace period of the dry run the page shows.
func TestAdminApplyKeepsTheDryRunsGracePeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "eve"}, png("kept"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "fay"}, png("kept2"), "me.png"))
	kept := e.inSync("setup")
	fresh := "profile_pics/0123456789abcdef0123456789abcdef.png"
	storagetest.WriteFile(t, e.fs, fresh, png("fresh orphan"), time.Now())

	_, page := e.get("/admin")
	action, values := pageForm(t, page, "Check (dry run)")
	values.Set("min_age", "0")
	require.Equal(t, http.StatusSeeOther, e.postForm(action, values).StatusCode)
	_, page = e.get("/admin")
	require.Contains(t, string(page), fresh, "the dry run lists the fresh orphan")
	assert.Contains(t, storagetest.Files(t, e.fs), fresh, "the dry run deleted nothing")

	action, values = pageForm(t, page, "Delete these orphans")
	require.Equal(t, http.StatusSeeOther, e.postForm(action, values).StatusCode)
	assert.Equal(t, kept, storagetest.Files(t, e.fs), "the orphan the page listed is deleted, and only it")
	_, page = e.get("/admin")
	assert.Contains(t, string(page), "Deleted 1 file")
}

// The apply button deletes what its page listed, or nothing: after
// another dry run (another grace period, another list), an older page's
// button is refused and deletes nothing.
func TestAdminApplyFromAnOlderPageIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "gus"}, png("kept"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "hal"}, png("kept2"), "me.png"))
	require.Equal(t, http.StatusSeeOther, e.post("/users", map[string]string{"name": "ida"}, png("kept3"), "me.png"))
	fresh := "profile_pics/0123456789abcdef0123456789abcdef.png"
	storagetest.WriteFile(t, e.fs, fresh, png("fresh orphan"), time.Now())
	old := "profile_pics/fedcba9876543210fedcba9876543210.png"
	storagetest.WriteFile(t, e.fs, old, png("old orphan"), time.Now().Add(-72*time.Hour))
	before := storagetest.Files(t, e.fs)

	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/orphans", url.Values{"action": {"find"}, "min_age": {"24h"}}).StatusCode)
	_, oldPage := e.get("/admin")
	require.Contains(t, string(oldPage), old)
	assert.NotContains(t, string(oldPage), fresh, "a one-day grace period keeps the fresh file")
	require.Equal(t, http.StatusSeeOther, e.postForm("/admin/orphans", url.Values{"action": {"find"}, "min_age": {"0"}}).StatusCode)

	action, values := pageForm(t, oldPage, "Delete these orphans")
	resp := e.postForm(action, values)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "an apply from a page that no longer shows the plan is refused")
	assert.Equal(t, before, storagetest.Files(t, e.fs), "nothing deleted")
}
